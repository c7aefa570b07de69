//! One profile file: parsed, checked, and (only when something is wrong) explained.
//!
//! [`Layer::read`] is the launch path: TOML into JSON values, a typed deserialization
//! into [`RawProfile`] (whose types enforce what the schema says) and the rules a schema
//! cannot say. Only when that finds a problem are the JSON Schema validator and the
//! key locations built, to report every problem at once with its `line:column`.

use std::sync::OnceLock;

use figment::value::{Dict, Map};
use figment::{Metadata, Provider};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde::Deserialize;
use serde_json::Value;

use crate::diag::{line_col, short, Diagnostic};
use crate::keypath::{did_you_mean, dotted, pointer_to_path, Part, Seg, Spans};
use crate::model::{profile_name_problem, RawProfile};
use crate::schema::{profile_schema, profile_validator, resolve_ref};
use crate::source::{Origin, Source};

/// One checked file of an `extends` chain.
pub struct Layer {
    /// The file.
    pub source: Source,
    /// Its keys.
    pub value: Value,
    spans: OnceLock<Spans>,
}

impl Layer {
    /// Reads `source`: the layer, or every problem of the file, located.
    pub fn read(source: Source) -> Result<Layer, Vec<Diagnostic>> {
        if let Some(value) = fast_check(&source.text) {
            return Ok(Layer {
                source,
                value,
                spans: OnceLock::new(),
            });
        }
        let checked = check_text(&source.label(), &source.text);
        match checked.value {
            Some(value) if checked.diagnostics.is_empty() => Ok(Layer {
                source,
                value,
                spans: OnceLock::from(checked.spans),
            }),
            _ => Err(checked.diagnostics),
        }
    }

    /// Where each key of the file is (parsed on first use).
    pub fn spans(&self) -> &Spans {
        self.spans.get_or_init(|| Spans::parse(&self.source.text))
    }

    /// The `extends` key, if set.
    pub fn extends(&self) -> Option<&str> {
        self.value.get("extends").and_then(Value::as_str)
    }
}

impl Provider for &Layer {
    fn metadata(&self) -> Metadata {
        let meta = Metadata::named(self.source.label());
        match self.source.origin {
            Origin::BuiltIn => meta.source(figment::Source::Custom(self.source.label())),
            _ => meta.source(figment::Source::File(self.source.path.clone())),
        }
    }

    fn data(&self) -> Result<Map<figment::Profile, Dict>, figment::Error> {
        figment::providers::Serialized::defaults(&self.value).data()
    }
}

/// The launch path's check: the file's keys when it is valid, `None` when anything is
/// wrong (then [`check_text`] says what). Agrees with [`check_text`] on what is valid.
fn fast_check(text: &str) -> Option<Value> {
    let value: Value = toml::from_str(text).ok()?;
    valid_value(&value).then_some(value)
}

/// Whether a layer's keys (a file's, or `--set` overrides') are valid, without building
/// any diagnostic.
pub fn valid_value(value: &Value) -> bool {
    if RawProfile::deserialize(value).is_err() {
        return false;
    }
    let mut found = Vec::new();
    crate::rules::check(value, &|_| true, &mut found);
    found.is_empty()
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

/// Checks one profile file's text with every diagnostic located. `origin` names the file.
pub fn check_text(origin: &str, text: &str) -> Checked {
    let mut diagnostics = Vec::new();
    let at = |(line, column): (usize, usize), message: String| Diagnostic {
        origin: origin.to_owned(),
        line,
        column,
        key: String::new(),
        message,
        hint: None,
    };
    if let Err(err) = toml_edit::Document::parse(text.to_owned()) {
        let place = err.span().map_or((1, 1), |s| line_col(text, s.start));
        diagnostics.push(at(place, format!("invalid TOML: {}", err.message().trim())));
        return Checked {
            value: None,
            spans: Spans::parse(text),
            diagnostics,
        };
    }
    let spans = Spans::parse(text);
    let value: Value = match toml::from_str(text) {
        Ok(v) => v,
        Err(err) => {
            let place = err.span().map_or((1, 1), |s| line_col(text, s.start));
            diagnostics.push(at(place, format!("invalid TOML: {}", err.message().trim())));
            return Checked {
                value: None,
                spans,
                diagnostics,
            };
        }
    };
    for (path, part, d) in check_value(&value) {
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
    crate::rules::check(value, &ok, &mut out);
    if out.is_empty() {
        // The schema and the types say the same thing by construction; should they ever
        // disagree, the type's message is still a located problem, never a silent pass.
        if let Err(e) = RawProfile::deserialize(value) {
            out.push((Vec::new(), Part::Key, Diagnostic::new("", e.to_string())));
        }
    }
    out
}

type Problem = (Vec<Seg>, Part, Diagnostic);

fn schema_problems(value: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    for err in profile_validator().iter_errors(value) {
        let path = pointer_to_path(err.instance_path().as_str());
        let key = dotted(&path);
        // A profile name breaks one rule of several (pattern, length, reserved); the
        // rule itself says which, once.
        if key == "extends" {
            if let Some(problem) = err.instance().as_str().and_then(profile_name_problem) {
                if !out.iter().any(|(p, _, _): &Problem| *p == path) {
                    out.push((path, Part::Value, Diagnostic::new(key, problem)));
                }
                continue;
            }
        }
        let instance = err.instance();
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                out.extend(unknown_keys(&path, unexpected));
            }
            ValidationErrorKind::PropertyNames { error } => {
                let name = error.instance().as_str().unwrap_or_default().to_owned();
                let mut p = path;
                p.push(Seg::Key(name.clone()));
                let message = format!("`{name}` is not a valid environment variable name");
                let d = Diagnostic::new(dotted(&p), message)
                    .with_hint("use letters, digits and `_`, not starting with a digit");
                out.push((p, Part::Key, d));
            }
            kind => out.push((path, Part::Value, value_problem(key, kind, instance, &err))),
        }
    }
    out
}

/// Keys the schema does not know in the table at `path`, each with a suggestion.
fn unknown_keys(path: &[Seg], unexpected: &[String]) -> Vec<Problem> {
    let known = known_keys(profile_schema(), path);
    let listed = || {
        let names: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        format!("known keys here: {}", names.join(", "))
    };
    unexpected
        .iter()
        .map(|name| {
            let mut p = path.to_vec();
            p.push(Seg::Key(name.clone()));
            let mut d = Diagnostic::new(dotted(&p), format!("unknown key `{name}`"));
            d.hint = Some(match did_you_mean(name, &known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => listed(),
            });
            (p, Part::Key, d)
        })
        .collect()
}

/// What is wrong with a value the schema refused, in the words of its rule.
fn value_problem(
    key: String,
    kind: &ValidationErrorKind,
    instance: &Value,
    err: &dyn std::fmt::Display,
) -> Diagnostic {
    match kind {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => article(&t.to_string()),
                TypeKind::Multiple(ts) => ts
                    .into_iter()
                    .map(|t| article(&t.to_string()))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            let found = article(json_kind(instance));
            Diagnostic::new(key, format!("expected {expected}, found {found}"))
        }
        ValidationErrorKind::Enum { options } => enum_problem(key, options, instance),
        ValidationErrorKind::Minimum { limit } => {
            Diagnostic::new(key, format!("must be at least {limit}"))
        }
        ValidationErrorKind::Maximum { limit } => {
            Diagnostic::new(key, format!("must be at most {limit}"))
        }
        ValidationErrorKind::MinLength { .. } => Diagnostic::new(key, "must not be empty"),
        ValidationErrorKind::Pattern { pattern } => pattern_problem(key, pattern, instance),
        _ => Diagnostic::new(key, err.to_string()),
    }
}

/// A value that is not one of an enum's choices: the choices, and the likely one.
fn enum_problem(key: String, options: &Value, instance: &Value) -> Diagnostic {
    let names: Vec<&str> = options
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let choices: Vec<String> = names.iter().map(|s| format!("`{s}`")).collect();
    let message = format!("{} is not one of {}", short(instance), choices.join(", "));
    let given = instance.as_str().unwrap_or_default();
    let hint = if key == "isolation.level" {
        Some(
            "levels are `env` (A: environment only), `sandbox` (B: bubblewrap), \
             `container` (C: Docker or Podman)"
                .into(),
        )
    } else {
        did_you_mean(given, &names).map(|s| format!("did you mean `{s}`?"))
    };
    let mut d = Diagnostic::new(key, message);
    d.hint = hint;
    d
}

/// A string that does not match its key's pattern, said for what the pattern means.
fn pattern_problem(key: String, pattern: &str, instance: &Value) -> Diagnostic {
    let given = short(instance);
    match pattern {
        "^/" => Diagnostic::new(key, format!("{given} is not a path"))
            .with_hint("write a path on the server, starting with `/`"),
        p if p.contains("[A-Za-z_][A-Za-z0-9_]*") => {
            Diagnostic::new(key, format!("{given} is not an environment variable name"))
        }
        p if p.contains("[A-Za-z0-9_.-]") => {
            Diagnostic::new(key, format!("{given} is not a valid alias name"))
                .with_hint("use letters, digits, `_`, `.` and `-` (it becomes a shell alias)")
        }
        _ => Diagnostic::new(key, format!("{given} does not match `{pattern}`")),
    }
}

/// The keys the schema allows in the table at `path`.
fn known_keys(schema: &Value, path: &[Seg]) -> Vec<String> {
    let mut node = schema;
    for seg in path {
        node = resolve_ref(schema, node);
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
    resolve_ref(schema, node)
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
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
