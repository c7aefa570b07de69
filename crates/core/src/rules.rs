//! The rules a JSON Schema cannot say: a `/v1` base URL, a literal secret, credential
//! sources that conflict, keys that do nothing in the profile's auth mode, managed
//! environment variables, host patterns, and Claude Code's own settings schema as the
//! judge of permission rules and raw settings.
//!
//! Each rule looks at one file's keys (or one `--set`), so its problem is reported where
//! it was written. Rules that need the merged profile or the host live in
//! [`crate::profile`].

use serde_json::Value;

use crate::diag::{short, Diagnostic};
use crate::keypath::{did_you_mean, dotted, parse_dotted, pointer_to_path, value_at, Part, Seg};
use crate::model::{BaseUrl, HostPattern, VersionSpec};
use crate::policy;
use crate::schema::{claude_settings_keys, settings_errors};

/// Checks the rules on one layer's keys, skipping keys `ok` rejects (their shape is
/// already reported), and adds each problem with its key path to `out`.
pub fn check(
    value: &Value,
    ok: &dyn Fn(&[Seg]) -> bool,
    out: &mut Vec<(Vec<Seg>, Part, Diagnostic)>,
) {
    let mut r = Rules { value, ok, out };
    r.characters(&mut Vec::new(), value);
    r.backend();
    r.auth();
    r.workspace();
    r.env();
    r.network();
    r.claude();
    r.permissions();
}

/// One layer's keys and the problems found so far.
struct Rules<'a> {
    value: &'a Value,
    ok: &'a dyn Fn(&[Seg]) -> bool,
    out: &'a mut Vec<(Vec<Seg>, Part, Diagnostic)>,
}

impl<'a> Rules<'a> {
    /// The value at a dotted key, unless its shape is already reported.
    fn get(&self, dotted_key: &str) -> Option<&'a Value> {
        let p = dotted_key.replace('.', "/");
        self.value
            .pointer(&format!("/{p}"))
            .filter(|_| (self.ok)(&parse_dotted(dotted_key)))
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn push(&mut self, key: &str, d: Diagnostic) {
        self.out.push((parse_dotted(key), Part::Value, d))
    }

    /// Every key and string, at any depth: no NUL (no argument, environment variable
    /// or path can carry one: it would fail at launch) and no control character but tab,
    /// line feed and carriage return (it would reach a terminal or a program unseen).
    fn characters(&mut self, path: &mut Vec<Seg>, v: &Value) {
        if !(self.ok)(path) {
            return;
        }
        match v {
            Value::String(s) => {
                if let Some(message) = control_problem(s) {
                    let key = dotted(path);
                    self.out.push((
                        path.clone(),
                        Part::Value,
                        Diagnostic::new(key, message).with_hint(CONTROL_HINT),
                    ));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    self.characters(path, item);
                    path.pop();
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    path.push(Seg::Key(k.clone()));
                    match control_problem(k) {
                        Some(message) if (self.ok)(path) => {
                            let key = dotted(path);
                            self.out.push((
                                path.clone(),
                                Part::Key,
                                Diagnostic::new(key, format!("the key: {message}"))
                                    .with_hint(CONTROL_HINT),
                            ));
                        }
                        _ => self.characters(path, item),
                    }
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn backend(&mut self) {
        if let Some(url) = self.get("backend.url").and_then(Value::as_str) {
            if let Err(problem) = BaseUrl::parse(url) {
                let mut d = Diagnostic::new("backend.url", problem.to_string());
                d.hint = problem.hint();
                self.push("backend.url", d);
            }
        }

        if let Some(target) = self.get("backend.switch.url").and_then(Value::as_str) {
            if let Some(problem) = switch_url_problem(target) {
                self.push(
                    "backend.switch.url",
                    Diagnostic::new("backend.switch.url", problem).with_hint(
                        "write a path on the backend (`/models/load`) or an `http://` URL \
                         without credentials",
                    ),
                );
            }
        }

        if let Some(Value::Object(switch)) = self.get("backend.switch") {
            let (command, url) = (switch.contains_key("command"), switch.contains_key("url"));
            if command == url {
                self.push(
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
                self.push(
                    "backend.switch",
                    Diagnostic::new(
                        "backend.switch",
                        "`method` and `body` go with `url`, not `command`",
                    ),
                );
            }
        }
    }

    fn auth(&mut self) {
        let mode = self.get("auth.mode").and_then(Value::as_str);
        if let Some(token) = self.get("auth.token").and_then(Value::as_str) {
            if mode == Some("api-key") {
                self.push(
                    "auth.token",
                    Diagnostic::new("auth.token", "a literal secret in an `api-key` profile")
                        .with_hint(
                            "put the key in an environment variable and set `key-env`, or set \
                             `key-command` to a command that prints it",
                        ),
                );
            } else if looks_like_api_key(token) {
                self.push(
                    "auth.token",
                    Diagnostic::new("auth.token", "this looks like a real Anthropic API key")
                        .with_hint(
                            "never put secrets in a profile: use `token-env` or `token-command`",
                        ),
                );
            }
        }
        if let Some(mode) = mode {
            for key in CREDENTIAL_KEYS.map(|(k, _)| k) {
                if self.has(key) {
                    if let Some(d) = credential_mismatch(key, mode) {
                        self.push(key, d);
                    }
                }
            }
        }
        for group in [
            &["auth.token", "auth.token-env", "auth.token-command"][..],
            &["auth.key-env", "auth.key-command"][..],
        ] {
            let set: Vec<&str> = group.iter().copied().filter(|k| self.has(k)).collect();
            if set.len() > 1 {
                self.push(
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
    }

    fn workspace(&mut self) {
        if let Some(Value::Array(list)) = self.get("workspace.protect") {
            for (i, entry) in list.iter().enumerate() {
                let Some(text) = entry.as_str() else { continue };
                if !crate::model::valid_protect_path(text) {
                    let path = vec![
                        Seg::Key("workspace".into()),
                        Seg::Key("protect".into()),
                        Seg::Index(i),
                    ];
                    let key = dotted(&path);
                    self.out.push((
                        path,
                        Part::Value,
                        Diagnostic::new(
                            key,
                            format!("`{text}` is not a path inside the workspace"),
                        )
                        .with_hint(
                            "write it relative to the workspace, without `..`, e.g. `.envrc`",
                        ),
                    ));
                }
            }
        }
        // Whether a workspace is acceptable is judged on the resolved path, in one
        // place (`policy::refused_path`, from `profile::resolve`). Here only the mistake
        // of writing a shell variable, which clp does not expand (a `$HOME/x` would be a
        // directory named `$HOME` beside the profile), in any key that holds a path.
        let mut paths: Vec<(Vec<Seg>, &str)> = Vec::new();
        for key in ["workspace.path", "isolation.config-dir"] {
            if let Some(text) = self.get(key).and_then(Value::as_str) {
                paths.push((parse_dotted(key), text));
            }
        }
        for list in ["read-only", "writable"] {
            if let Some(Value::Array(items)) = self.get(&format!("workspace.{list}")) {
                for (i, item) in items.iter().enumerate() {
                    if let Some(text) = item.as_str() {
                        let at = vec![
                            Seg::Key("workspace".into()),
                            Seg::Key(list.into()),
                            Seg::Index(i),
                        ];
                        paths.push((at, text));
                    }
                }
            }
        }
        for (at, text) in paths {
            if text.starts_with('$') {
                let key = dotted(&at);
                self.out.push((
                    at,
                    Part::Value,
                    Diagnostic::new(
                        key,
                        format!("`{text}` is not expanded: clp reads paths literally"),
                    )
                    .with_hint("write `~/...` for your home, or an absolute path"),
                ));
            }
        }
    }

    fn env(&mut self) {
        if let Some(Value::Object(env)) = self.get("env") {
            for (name, v) in env {
                let key = format!("env.{name}");
                if policy::MANAGED_ENV.contains(&name.as_str()) {
                    self.out.push((
                        vec![Seg::Key("env".into()), Seg::Key(name.clone())],
                        Part::Key,
                        Diagnostic::new(key, format!("`{name}` is set by clp"))
                            .with_hint(managed_env_hint(name)),
                    ));
                } else if v.as_str().is_some_and(looks_like_api_key) {
                    self.out.push((
                        vec![Seg::Key("env".into()), Seg::Key(name.clone())],
                        Part::Value,
                        Diagnostic::new(key, "this looks like a real Anthropic API key").with_hint(
                            "never put secrets in a profile: use `auth.key-env` or `auth.key-command`",
                        ),
                    ));
                }
            }
        }
    }

    fn network(&mut self) {
        if let Some(Value::Array(hosts)) = self.get("network.allow") {
            for (i, h) in hosts.iter().enumerate() {
                if let Some(h) = h.as_str() {
                    if let Err(why) = HostPattern::parse(h) {
                        self.out.push((
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
    }

    fn claude(&mut self) {
        if let Some(req) = self.get("claude.version").and_then(Value::as_str) {
            if let Err(e) = VersionSpec::parse(req) {
                self.push(
                    "claude.version",
                    Diagnostic::new("claude.version", format!("not a version requirement: {e}"))
                        .with_hint("write e.g. `>=2.1.300` or `=2.1.330`"),
                );
            }
        }

        // Permission rules and raw settings: Claude Code's own schema is the judge.
        if let Some(Value::Object(raw)) = self.get("claude.settings") {
            let prefix = [Seg::Key("claude".into()), Seg::Key("settings".into())];
            let known = claude_settings_keys();
            for key in raw.keys() {
                if !known.iter().any(|k| k == key) {
                    let mut path = prefix.to_vec();
                    path.push(Seg::Key(key.clone()));
                    let mut d = Diagnostic::new(
                        dotted(&path),
                        format!("Claude Code has no setting `{key}`"),
                    );
                    if let Some(s) = did_you_mean(key, &known) {
                        d.hint = Some(format!("did you mean `{s}`?"));
                    }
                    self.out.push((path, Part::Key, d));
                }
            }
            for (pointer, message) in settings_errors(&Value::Object(raw.clone())) {
                let mut path = prefix.to_vec();
                path.extend(pointer_to_path(&pointer));
                if !(self.ok)(&path) {
                    continue;
                }
                self.out.push((
                    path.clone(),
                    Part::Value,
                    Diagnostic::new(
                        dotted(&path),
                        format!("Claude Code's settings schema rejects this: {message}"),
                    ),
                ));
            }
        }
    }

    fn permissions(&mut self) {
        if let Some(Value::Object(perms)) = self.get("permissions") {
            let settings = serde_json::json!({ "permissions": perms });
            for (pointer, _) in settings_errors(&settings) {
                let path = pointer_to_path(&pointer);
                // Only the rules themselves: the table's shape is the profile schema's job.
                let is_rule = matches!(path.as_slice(), [_, Seg::Key(list), Seg::Index(_)]
                    if ["allow", "ask", "deny"].contains(&list.as_str()));
                if !is_rule || !(self.ok)(&path) {
                    continue;
                }
                let d = Diagnostic::new(
                    dotted(&path),
                    format!(
                        "not a Claude Code permission rule: {}",
                        short(value_at(self.value, &path).unwrap_or(&Value::Null))
                    ),
                )
                .with_hint("write `Tool` or `Tool(specifier)`, e.g. `Bash(git status)`");
                self.out.push((path, Part::Value, d));
            }
        }
    }
}

/// What is wrong with a switch request's URL: a path on the backend, or an absolute
/// `http`/`https` URL without credentials (they would be printed and sent in clear).
fn switch_url_problem(target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    match url::Url::parse(target) {
        Err(e) => Some(format!("not a path or a URL: {e}")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Some(format!("unsupported scheme `{}`", u.scheme()))
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            Some("the URL carries credentials (`user:password@`)".into())
        }
        Ok(_) => None,
    }
}

const CONTROL_HINT: &str = "remove it; tabs and line breaks are the only control characters \
                            a profile may hold";

/// What is wrong with the characters of `s`, if anything: a NUL, or a control character
/// other than tab, line feed and carriage return.
pub fn control_problem(s: &str) -> Option<String> {
    if s.contains('\0') {
        return Some(
            "contains a NUL character, which no argument, environment variable or path can \
             carry"
                .into(),
        );
    }
    let c = s
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))?;
    Some(format!(
        "contains the control character U+{:04X}, which would reach a terminal or a \
         program unseen",
        c as u32
    ))
}

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

/// Whether a string looks like a real Anthropic API key.
pub fn looks_like_api_key(s: &str) -> bool {
    s.starts_with("sk-ant-")
}

/// The credential keys and the auth mode each belongs to.
pub const CREDENTIAL_KEYS: [(&str, &str); 5] = [
    ("auth.token", "auth-token"),
    ("auth.token-env", "auth-token"),
    ("auth.token-command", "auth-token"),
    ("auth.key-env", "api-key"),
    ("auth.key-command", "api-key"),
];

/// A credential key set in a profile whose auth `mode` does not use it. (A literal
/// `token` in an `api-key` profile has its own, sharper message.)
pub fn credential_mismatch(key: &str, mode: &str) -> Option<Diagnostic> {
    let belongs = CREDENTIAL_KEYS.iter().find(|(k, _)| *k == key)?.1;
    if mode == belongs || (key == "auth.token" && mode == "api-key") {
        return None;
    }
    Some(
        Diagnostic::new(key, format!("`{key}` has no effect with mode `{mode}`"))
            .with_hint(format!("set `auth.mode = \"{belongs}\"` or remove the key")),
    )
}
