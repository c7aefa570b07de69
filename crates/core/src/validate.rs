//! Checking one profile file: TOML syntax, the generated schema, and the rules a schema
//! cannot say, every problem at once and each at its `line:column`.
//!
//! Rules that need the merged profile or the host (a workspace that is the whole home, an
//! `auth-token` profile with no token anywhere in its chain) live in [`crate::resolve()`].

use std::ops::Range;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;
use toml_edit::{Document, Item};

use crate::diag::{line_col, Diagnostic};
use crate::schema::{profile_schema, profile_validator, settings_errors};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Formats a key path the way users write it: `permissions.allow[2]`.
pub fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses a dotted key (`backend.url`) into a path.
pub fn parse_dotted(key: &str) -> Vec<Seg> {
    key.split('.').map(|k| Seg::Key(k.to_owned())).collect()
}

/// A parsed profile file that can say where each key is.
pub struct Spans {
    text: String,
    doc: Option<Document<String>>,
}

/// Which part of a key/value pair to point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The key itself (unknown keys).
    Key,
    /// The value (wrong types and values).
    Value,
}

impl Spans {
    /// The (line, column) of `path`, falling back to the nearest enclosing key that exists.
    pub fn locate(&self, path: &[Seg], part: Part) -> (usize, usize) {
        let Some(doc) = &self.doc else {
            return (1, 1);
        };
        let mut node = Node::Item(doc.as_item());
        let mut best: Option<Range<usize>> = None;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let next = match (seg, node) {
                (Seg::Key(k), Node::Item(item)) => item.as_table_like().and_then(|t| {
                    let (key, item) = t.get_key_value(k)?;
                    let span = if last && part == Part::Key {
                        key.span()
                    } else {
                        item.span().or_else(|| key.span())
                    };
                    if span.is_some() {
                        best = span;
                    }
                    Some(Node::Item(item))
                }),
                (Seg::Index(n), Node::Item(Item::Value(toml_edit::Value::Array(a)))) => {
                    a.get(*n).map(|v| {
                        if v.span().is_some() {
                            best = v.span();
                        }
                        Node::Value(v)
                    })
                }
                (Seg::Index(n), Node::Item(Item::ArrayOfTables(a))) => a.get(*n).map(|t| {
                    if t.span().is_some() {
                        best = t.span();
                    }
                    Node::Table(t)
                }),
                (Seg::Key(k), Node::Value(toml_edit::Value::InlineTable(t))) => {
                    t.get_key_value(k).map(|(key, item)| {
                        let span = if last && part == Part::Key {
                            key.span()
                        } else {
                            item.span().or_else(|| key.span())
                        };
                        if span.is_some() {
                            best = span;
                        }
                        Node::Item(item)
                    })
                }
                (Seg::Key(k), Node::Table(t)) => t.get_key_value(k).map(|(key, item)| {
                    let span = if last && part == Part::Key {
                        key.span()
                    } else {
                        item.span().or_else(|| key.span())
                    };
                    if span.is_some() {
                        best = span;
                    }
                    Node::Item(item)
                }),
                (Seg::Index(n), Node::Value(toml_edit::Value::Array(a))) => a.get(*n).map(|v| {
                    if v.span().is_some() {
                        best = v.span();
                    }
                    Node::Value(v)
                }),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best.map_or((1, 1), |span| line_col(&self.text, span.start))
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a toml_edit::Value),
    Table(&'a toml_edit::Table),
}

/// The result of checking one file.
pub struct Checked {
    /// The file's keys as JSON, when the TOML parsed.
    pub value: Option<Value>,
    /// Where each key is.
    pub spans: Spans,
    /// Every problem found, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks one profile file's text. `origin` names the file in diagnostics.
pub fn check_text(origin: &str, text: &str) -> Checked {
    let mut diagnostics = Vec::new();
    let doc = match Document::parse(text.to_owned()) {
        Ok(doc) => Some(doc),
        Err(err) => {
            let (line, column) = err.span().map_or((1, 1), |s| line_col(text, s.start));
            let message = err.message().trim().to_owned();
            diagnostics.push(Diagnostic {
                origin: origin.to_owned(),
                line,
                column,
                key: String::new(),
                message: format!("invalid TOML: {message}"),
                hint: None,
            });
            None
        }
    };
    let spans = Spans {
        text: text.to_owned(),
        doc,
    };
    if spans.doc.is_none() {
        return Checked {
            value: None,
            spans,
            diagnostics,
        };
    }
    let value: Value = match toml::from_str(text) {
        Ok(v) => v,
        Err(err) => {
            let (line, column) = err.span().map_or((1, 1), |s| line_col(text, s.start));
            diagnostics.push(Diagnostic {
                origin: origin.to_owned(),
                line,
                column,
                key: String::new(),
                message: format!("invalid TOML: {}", err.message().trim()),
                hint: None,
            });
            return Checked {
                value: None,
                spans,
                diagnostics,
            };
        }
    };
    let mut found = check_value(&value);
    for (path, part, d) in found.drain(..) {
        let (line, column) = spans.locate(&path, part);
        diagnostics.push(Diagnostic {
            origin: origin.to_owned(),
            line,
            column,
            ..d
        });
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Checked {
        value: Some(value),
        spans,
        diagnostics,
    }
}

/// Checks a profile layer given as JSON (a file's keys or `--set` overrides): the schema,
/// then the rules a schema cannot say. Returns each problem with its key path.
pub fn check_value(value: &Value) -> Vec<(Vec<Seg>, Part, Diagnostic)> {
    let mut out = schema_problems(value);
    // Rules look only at keys the schema accepted the shape of, so one mistake is not
    // reported twice.
    let bad: Vec<Vec<Seg>> = out.iter().map(|(p, _, _)| p.clone()).collect();
    let ok = |path: &[Seg]| !bad.iter().any(|b| path.starts_with(b));
    rules(value, &ok, &mut out);
    out
}

fn schema_problems(value: &Value) -> Vec<(Vec<Seg>, Part, Diagnostic)> {
    let schema = profile_schema();
    let mut out = Vec::new();
    for err in profile_validator().iter_errors(value) {
        let path = pointer_to_path(err.instance_path().as_str());
        let key = dotted(&path);
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = known_keys(schema, &path);
                for name in unexpected {
                    let mut p = path.clone();
                    p.push(Seg::Key(name.clone()));
                    let mut d = Diagnostic::new(dotted(&p), format!("unknown key `{name}`"));
                    d.hint = Some(match did_you_mean(name, &known) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "known keys here: {}",
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                    out.push((p, Part::Key, d));
                }
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => article(&t.to_string()),
                    TypeKind::Multiple(ts) => ts
                        .into_iter()
                        .map(|t| article(&t.to_string()))
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                let found = article(json_kind(err.instance()));
                out.push((
                    path,
                    Part::Value,
                    Diagnostic::new(key, format!("expected {expected}, found {found}")),
                ));
            }
            ValidationErrorKind::Enum { options } => {
                let choices: Vec<String> = options
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|s| format!("`{s}`"))
                    .collect();
                let mut d = Diagnostic::new(
                    key.clone(),
                    format!(
                        "{} is not one of {}",
                        short(err.instance()),
                        choices.join(", ")
                    ),
                );
                let given = err.instance().as_str().unwrap_or_default();
                let names: Vec<&str> = options
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if key == "isolation.level" {
                    d.hint = Some(
                        "levels are `env` (A: environment only), `sandbox` (B: bubblewrap), \
                         `container` (C: Docker or Podman)"
                            .into(),
                    );
                } else if let Some(s) = did_you_mean(given, &names) {
                    d.hint = Some(format!("did you mean `{s}`?"));
                }
                out.push((path, Part::Value, d));
            }
            ValidationErrorKind::PropertyNames { error } => {
                let name = error.instance().as_str().unwrap_or_default().to_owned();
                let mut p = path.clone();
                p.push(Seg::Key(name.clone()));
                out.push((
                    p.clone(),
                    Part::Key,
                    Diagnostic::new(
                        dotted(&p),
                        format!("`{name}` is not a valid environment variable name"),
                    )
                    .with_hint("use letters, digits and `_`, not starting with a digit"),
                ));
            }
            ValidationErrorKind::Minimum { limit } => out.push((
                path,
                Part::Value,
                Diagnostic::new(key, format!("must be at least {limit}")),
            )),
            ValidationErrorKind::Maximum { limit } => out.push((
                path,
                Part::Value,
                Diagnostic::new(key, format!("must be at most {limit}")),
            )),
            ValidationErrorKind::MinLength { .. } => {
                out.push((path, Part::Value, Diagnostic::new(key, "must not be empty")))
            }
            ValidationErrorKind::Pattern { pattern } => {
                let given = short(err.instance());
                let d = match pattern.as_str() {
                    "^/" => Diagnostic::new(key, format!("{given} is not a path"))
                        .with_hint("write a path on the server, starting with `/`"),
                    p if p.contains("[A-Za-z_][A-Za-z0-9_]*") => {
                        Diagnostic::new(key, format!("{given} is not an environment variable name"))
                    }
                    p if p.contains("[A-Za-z0-9_.-]") => {
                        Diagnostic::new(key, format!("{given} is not a valid alias name"))
                            .with_hint(
                                "use letters, digits, `_`, `.` and `-` (it becomes a shell alias)",
                            )
                    }
                    _ => Diagnostic::new(key, format!("{given} does not match `{pattern}`")),
                };
                out.push((path, Part::Value, d));
            }
            _ => out.push((path, Part::Value, Diagnostic::new(key, err.to_string()))),
        }
    }
    out
}

/// The rules a JSON Schema cannot say.
fn rules(value: &Value, ok: &dyn Fn(&[Seg]) -> bool, out: &mut Vec<(Vec<Seg>, Part, Diagnostic)>) {
    let get = |dotted_key: &str| -> Option<&Value> {
        let p = dotted_key.replace('.', "/");
        value
            .pointer(&format!("/{p}"))
            .filter(|_| ok(&parse_dotted(dotted_key)))
    };
    let push = |out: &mut Vec<(Vec<Seg>, Part, Diagnostic)>, key: &str, d: Diagnostic| {
        out.push((parse_dotted(key), Part::Value, d))
    };

    if let Some(url) = get("backend.url").and_then(Value::as_str) {
        if let Some(d) = check_base_url(url) {
            push(out, "backend.url", d);
        }
    }

    if let Some(Value::Object(switch)) = get("backend.switch") {
        let (command, url) = (switch.contains_key("command"), switch.contains_key("url"));
        if command == url {
            push(
                out,
                "backend.switch",
                Diagnostic::new(
                    "backend.switch",
                    if command {
                        "give `command` or `url`, not both"
                    } else {
                        "give `command` or `url`"
                    },
                )
                .with_hint(
                    "e.g. `switch = { url = \"/models/load\", body = '{\"model\": \"m\"}' }`",
                ),
            );
        } else if command && (switch.contains_key("method") || switch.contains_key("body")) {
            push(
                out,
                "backend.switch",
                Diagnostic::new(
                    "backend.switch",
                    "`method` and `body` go with `url`, not `command`",
                ),
            );
        }
    }

    let mode = get("auth.mode").and_then(Value::as_str);
    let has = |k: &str| get(k).is_some();
    if let Some(token) = get("auth.token").and_then(Value::as_str) {
        if mode == Some("api-key") {
            push(
                out,
                "auth.token",
                Diagnostic::new("auth.token", "a literal secret in an `api-key` profile")
                    .with_hint(
                        "put the key in an environment variable and set `key-env`, or set \
                         `key-command` to a command that prints it",
                    ),
            );
        } else if looks_like_api_key(token) {
            push(
                out,
                "auth.token",
                Diagnostic::new("auth.token", "this looks like a real Anthropic API key")
                    .with_hint(
                        "never put secrets in a profile: use `token-env` or `token-command`",
                    ),
            );
        }
    }
    for (key, belongs) in [
        ("auth.token", "auth-token"),
        ("auth.token-env", "auth-token"),
        ("auth.token-command", "auth-token"),
        ("auth.key-env", "api-key"),
        ("auth.key-command", "api-key"),
    ] {
        let Some(mode) = mode else { continue };
        if has(key) && mode != belongs && !(key == "auth.token" && mode == "api-key") {
            push(
                out,
                key,
                Diagnostic::new(key, format!("`{key}` has no effect with mode `{mode}`"))
                    .with_hint(format!("set `auth.mode = \"{belongs}\"` or remove the key")),
            );
        }
    }
    for group in [
        &["auth.token", "auth.token-env", "auth.token-command"][..],
        &["auth.key-env", "auth.key-command"][..],
    ] {
        let set: Vec<&str> = group.iter().copied().filter(|k| has(k)).collect();
        if set.len() > 1 {
            push(
                out,
                set[1],
                Diagnostic::new(
                    set[1],
                    format!(
                        "only one credential source allowed, `{}` is set too",
                        set[0]
                    ),
                ),
            );
        }
    }

    if let Some(path) = get("workspace.path").and_then(Value::as_str) {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() || trimmed == "~" || trimmed == "$HOME" {
            push(
                out,
                "workspace.path",
                Diagnostic::new(
                    "workspace.path",
                    if trimmed.is_empty() {
                        "the workspace cannot be `/`, the whole disk"
                    } else {
                        "the workspace cannot be your whole home"
                    },
                )
                .with_hint("point it at one project directory, e.g. `~/src/my-project`"),
            );
        }
    }

    if let Some(Value::Object(env)) = get("env") {
        for (name, v) in env {
            let key = format!("env.{name}");
            if MANAGED_ENV.contains(&name.as_str()) {
                out.push((
                    vec![Seg::Key("env".into()), Seg::Key(name.clone())],
                    Part::Key,
                    Diagnostic::new(key, format!("`{name}` is set by clp"))
                        .with_hint(managed_env_hint(name)),
                ));
            } else if v.as_str().is_some_and(looks_like_api_key) {
                out.push((
                    vec![Seg::Key("env".into()), Seg::Key(name.clone())],
                    Part::Value,
                    Diagnostic::new(key, "this looks like a real Anthropic API key").with_hint(
                        "never put secrets in a profile: use `auth.key-env` or `auth.key-command`",
                    ),
                ));
            }
        }
    }

    if let Some(Value::Array(hosts)) = get("network.allow") {
        for (i, h) in hosts.iter().enumerate() {
            if let Some(h) = h.as_str() {
                if let Err(why) = check_host_pattern(h) {
                    out.push((
                        vec![
                            Seg::Key("network".into()),
                            Seg::Key("allow".into()),
                            Seg::Index(i),
                        ],
                        Part::Value,
                        Diagnostic::new(format!("network.allow[{i}]"), why).with_hint(
                            "write `host`, `host:port` or `*.domain`, without a scheme or path",
                        ),
                    ));
                }
            }
        }
    }

    if let Some(req) = get("claude.version").and_then(Value::as_str) {
        if let Err(e) = semver::VersionReq::parse(req) {
            push(
                out,
                "claude.version",
                Diagnostic::new("claude.version", format!("not a version requirement: {e}"))
                    .with_hint("write e.g. `>=2.1.300` or `=2.1.330`"),
            );
        }
    }

    // Permission rules and raw settings: Claude Code's own schema is the judge.
    if let Some(Value::Object(raw)) = get("claude.settings") {
        let prefix = [Seg::Key("claude".into()), Seg::Key("settings".into())];
        let known = crate::schema::claude_settings_keys();
        for key in raw.keys() {
            if !known.iter().any(|k| k == key) {
                let mut path = prefix.to_vec();
                path.push(Seg::Key(key.clone()));
                let mut d =
                    Diagnostic::new(dotted(&path), format!("Claude Code has no setting `{key}`"));
                if let Some(s) = did_you_mean(key, &known) {
                    d.hint = Some(format!("did you mean `{s}`?"));
                }
                out.push((path, Part::Key, d));
            }
        }
        for (pointer, message) in settings_errors(&Value::Object(raw.clone())) {
            let mut path = prefix.to_vec();
            path.extend(pointer_to_path(&pointer));
            if !ok(&path) {
                continue;
            }
            out.push((
                path.clone(),
                Part::Value,
                Diagnostic::new(
                    dotted(&path),
                    format!("Claude Code's settings schema rejects this: {message}"),
                ),
            ));
        }
    }
    if let Some(Value::Object(perms)) = get("permissions") {
        let settings = serde_json::json!({ "permissions": perms });
        for (pointer, _) in settings_errors(&settings) {
            let path = pointer_to_path(&pointer);
            // Only the rules themselves: the table's shape is the profile schema's job.
            let is_rule = matches!(path.as_slice(), [_, Seg::Key(list), Seg::Index(_)]
                if ["allow", "ask", "deny"].contains(&list.as_str()));
            if !is_rule || !ok(&path) {
                continue;
            }
            let d = Diagnostic::new(
                dotted(&path),
                format!(
                    "not a Claude Code permission rule: {}",
                    short(value_at(value, &path).unwrap_or(&Value::Null))
                ),
            )
            .with_hint("write `Tool` or `Tool(specifier)`, e.g. `Bash(git status)`");
            out.push((path, Part::Value, d));
        }
    }
}

/// Environment variables clp sets itself from the profile's typed keys.
pub const MANAGED_ENV: &[&str] = &[
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "CLAUDE_CODE_MAX_CONTEXT_TOKENS",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_CONFIG_DIR",
];

fn managed_env_hint(name: &str) -> String {
    let key = match name {
        "ANTHROPIC_BASE_URL" => "backend.url",
        "ANTHROPIC_AUTH_TOKEN" | "CLAUDE_CODE_OAUTH_TOKEN" => "auth.token / auth.token-env",
        "ANTHROPIC_API_KEY" => "auth.key-env / auth.key-command",
        "ANTHROPIC_MODEL" => "model.default",
        "ANTHROPIC_DEFAULT_OPUS_MODEL" => "model.opus",
        "ANTHROPIC_DEFAULT_SONNET_MODEL" => "model.sonnet",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL" => "model.haiku",
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS" => "model.context",
        "CLAUDE_CONFIG_DIR" => "isolation.config-dir",
        _ => return "clp manages this variable; remove it".into(),
    };
    format!("set `{key}` instead")
}

/// Checks a backend base URL: http(s), the server root, no `/v1`.
pub fn check_base_url(url: &str) -> Option<Diagnostic> {
    let key = "backend.url";
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Some(
                Diagnostic::new(key, format!("not a URL: {e}"))
                    .with_hint("write e.g. `http://127.0.0.1:8080`"),
            )
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        let hint = if parsed.cannot_be_a_base() && !url.contains("://") {
            format!("add the scheme: `http://{url}`")
        } else {
            "use `http://` or `https://`".to_owned()
        };
        return Some(
            Diagnostic::new(key, format!("unsupported scheme `{}`", parsed.scheme()))
                .with_hint(hint),
        );
    }
    let path = parsed.path().trim_end_matches('/');
    if path.ends_with("/v1") || path.contains("/v1/") {
        let before = &path[..path.find("/v1").unwrap_or(path.len())];
        let root = format!("{}{before}", parsed.origin().ascii_serialization());
        return Some(
            Diagnostic::new(key, "the base URL ends in `/v1`").with_hint(format!(
                "use the server root `{root}`: Claude Code appends `/v1/messages` itself"
            )),
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Some(Diagnostic::new(
            key,
            "the base URL cannot have a query or fragment",
        ));
    }
    None
}

/// Checks a network allowlist entry: `host`, `host:port`, `*.domain`, an IP.
pub fn check_host_pattern(pattern: &str) -> Result<(), String> {
    if pattern.contains("://") || pattern.contains('/') {
        return Err(format!("`{pattern}` is not a host pattern"));
    }
    if pattern.parse::<std::net::IpAddr>().is_ok()
        || pattern.parse::<std::net::SocketAddr>().is_ok()
    {
        return Ok(());
    }
    let (host, port) = match pattern.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (pattern, None),
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("`{port}` is not a port number"));
        }
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("`{pattern}` is not a host pattern"))
    }
}

/// Whether a string looks like a real Anthropic API key.
pub fn looks_like_api_key(s: &str) -> bool {
    s.starts_with("sk-ant-")
}

/// The closest of `candidates` to `name`, if close enough to be a typo.
pub fn did_you_mean<'a, S: AsRef<str>>(name: &str, candidates: &'a [S]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c.as_ref()), c.as_ref()))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The keys the schema allows in the table at `path`.
fn known_keys(schema: &Value, path: &[Seg]) -> Vec<String> {
    let mut node = schema;
    for seg in path {
        node = deref(schema, node);
        node = match seg {
            Seg::Key(k) => match node.get("properties").and_then(|p| p.get(k)) {
                Some(n) => n,
                None => return Vec::new(),
            },
            Seg::Index(_) => match node.get("items") {
                Some(n) => n,
                None => return Vec::new(),
            },
        };
    }
    deref(schema, node)
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn deref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or(node),
        None => node,
    }
}

/// Converts a JSON pointer (`/permissions/allow/0`) into a key path.
pub fn pointer_to_path(pointer: &str) -> Vec<Seg> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .map(|s| match s.parse::<usize>() {
            Ok(i) => Seg::Index(i),
            Err(_) => Seg::Key(s),
        })
        .collect()
}

fn value_at<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        // How the toml crate hands a TOML datetime to serde_json.
        Value::Object(m) if m.contains_key("$__toml_private_datetime") => "datetime",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "table",
    }
}

fn article(kind: &str) -> String {
    let kind = if kind == "object" { "table" } else { kind };
    let a = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{a} {kind}")
}

/// A value short enough for a one-line message.
fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    };
    if s.chars().count() > 60 {
        format!("{}...`", s.chars().take(56).collect::<String>())
    } else {
        s
    }
}
