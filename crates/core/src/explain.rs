//! `clp show`: the resolved value of every key and where it came from.

use serde::Serialize;
use serde_json::{json, Value};

use crate::merge::{Loaded, Provenance};
use crate::profile::{Auth, Profile, Secret};

/// One key of a resolved profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Dotted key.
    pub key: String,
    /// The resolved value.
    pub value: Value,
    /// Where it came from.
    pub from: Provenance,
}

/// Every key of `profile`, in schema order, with its provenance from `loaded`.
///
/// Long because it is a table: one line per key of the profile, in the order `clp show`
/// prints them; split, the order would no longer be readable in one place.
pub fn explain(profile: &Profile, loaded: &Loaded) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row = |key: &str, value: Value| {
        rows.push(Row {
            key: key.to_owned(),
            from: loaded.provenance(key),
            value,
        })
    };
    let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| json!(s));
    let path = |p: &std::path::Path| json!(p.display().to_string());

    row("description", json!(profile.description));
    if let Some(parent) = loaded.raw.extends.as_ref() {
        row("extends", json!(parent));
    }
    row("alias", opt(&profile.alias));
    let (mode, secret) = match &profile.auth {
        Auth::Oauth => ("oauth", None),
        Auth::ApiKey { from } => ("api-key", Some(from)),
        Auth::AuthToken { from } => ("auth-token", Some(from)),
    };
    row("auth.mode", json!(mode));
    match (mode, secret) {
        (_, None) => {}
        ("api-key", Some(Secret::Env(v))) => row("auth.key-env", json!(v)),
        ("api-key", Some(Secret::Command(c))) => row("auth.key-command", json!(c)),
        (_, Some(Secret::Literal(t))) => row("auth.token", json!(t)),
        (_, Some(Secret::Env(v))) => row("auth.token-env", json!(v)),
        (_, Some(Secret::Command(c))) => row("auth.token-command", json!(c)),
    }
    match &profile.backend {
        Some(b) => {
            row("backend.url", json!(b.url));
            row("backend.health", json!(b.health));
            row("backend.models", opt(&b.models));
            row("backend.check", json!(b.check));
            row("backend.wait", json!(b.wait));
        }
        None => row("backend.url", Value::Null),
    }
    row("model.default", opt(&profile.model.default));
    row("model.opus", opt(&profile.model.opus));
    row("model.sonnet", opt(&profile.model.sonnet));
    row("model.haiku", opt(&profile.model.haiku));
    row(
        "model.context",
        profile.model.context.map_or(Value::Null, |c| json!(c)),
    );
    row("isolation.level", json!(profile.isolation.level.as_str()));
    row("isolation.config-dir", path(&profile.isolation.config_dir));
    row("isolation.user", opt(&profile.isolation.user));
    row("network.mode", json!(profile.network.mode));
    row("network.allow", json!(profile.network.allow));
    row("workspace.path", path(&profile.workspace.path));
    let paths = |ps: &[std::path::PathBuf]| {
        json!(ps
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>())
    };
    row("workspace.read-only", paths(&profile.workspace.read_only));
    row("workspace.writable", paths(&profile.workspace.writable));
    row("workspace.protect", paths(&profile.workspace.protect));
    row("workspace.trust", json!(profile.workspace.trust));
    row("permissions.allow", json!(profile.permissions.allow));
    row("permissions.ask", json!(profile.permissions.ask));
    row("permissions.deny", json!(profile.permissions.deny));
    for (k, v) in &profile.env {
        row(&format!("env.{k}"), json!(v));
    }
    row("claude.command", json!(profile.claude.command));
    row("claude.args", json!(profile.claude.args));
    row(
        "claude.version",
        profile
            .claude
            .version
            .as_ref()
            .map_or(Value::Null, |v| json!(v.as_str())),
    );
    for (k, v) in &profile.claude.settings {
        row(&format!("claude.settings.{k}"), v.clone());
    }
    row("claude.share", json!(profile.claude.share));
    row("container.engine", json!(profile.container.engine));
    row("container.image", json!(profile.container.image));
    // The tiers follow model.default unless set; the protected list follows the
    // deprecated `protect-git` when only that is set.
    let protect_git = loaded.provenance("workspace.protect-git") != Provenance::Default;
    for r in &mut rows {
        if r.key == "workspace.protect" && r.from == Provenance::Default && protect_git {
            r.from = Provenance::Derived {
                from: "workspace.protect-git".into(),
            };
        }
        let tier = ["model.opus", "model.sonnet", "model.haiku"].contains(&r.key.as_str());
        if tier && r.from == Provenance::Default && !r.value.is_null() {
            r.from = Provenance::Derived {
                from: "model.default".into(),
            };
        }
    }
    rows
}

/// A value as it would be written in TOML (`"text"`, `32768`, `["a", "b"]`), or `(unset)`.
pub fn toml_value(value: &Value) -> String {
    match value {
        Value::Null => "(unset)".into(),
        Value::String(s) => toml_string(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// `clp show NAME` as text: the profile, its file and chain, each value with where it
/// came from, then the plan's notes or why it cannot launch here.
pub fn show_text(
    profile: &Profile,
    loaded: &Loaded,
    plan: &Result<crate::plan::LaunchPlan, crate::error::Error>,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "profile  {}", profile.name);
    if let Some(l) = loaded.chain.last() {
        let _ = writeln!(out, "file     {}", l.source.label());
    }
    let chain = chain(loaded);
    if chain.len() > 1 {
        let _ = writeln!(out, "extends  {}", chain.join(" -> "));
    }
    let level = profile.isolation.level;
    let _ = writeln!(out, "level    {} ({})\n", level.letter(), level.as_str());
    let cells: Vec<(String, String)> = explain(profile, loaded)
        .iter()
        .map(|r| {
            let kv = format!("{} = {}", r.key, toml_value(&r.value));
            (kv, r.from.to_string())
        })
        .collect();
    let width = cells.iter().map(|c| c.0.chars().count()).max().unwrap_or(0);
    for (kv, from) in cells {
        let _ = writeln!(out, "{kv:<width$}  # {from}");
    }
    match plan {
        Ok(plan) if !plan.notes.is_empty() => {
            out.push('\n');
            for n in &plan.notes {
                let _ = writeln!(out, "note: {n}");
            }
        }
        Ok(_) => {}
        Err(e) => {
            let _ = writeln!(out, "\ncannot launch here: {}", e.message);
            for h in &e.hints {
                let _ = writeln!(out, "  hint: {h}");
            }
        }
    }
    out
}

/// `clp show NAME --json`.
pub fn show_json(
    profile: &Profile,
    loaded: &Loaded,
    plan: &Result<crate::plan::LaunchPlan, crate::error::Error>,
) -> Value {
    json!({
        "name": profile.name,
        "source": loaded.chain.last().map(|l| l.source.label()),
        "chain": chain(loaded),
        "values": explain(profile, loaded),
        "notes": plan.as_ref().map(|p| p.notes.clone()).unwrap_or_default(),
        "launch-error": plan.as_ref().err().map(|e| e.to_string()),
    })
}

/// The profile's `extends` chain, the named profile first.
fn chain(loaded: &Loaded) -> Vec<String> {
    loaded
        .chain
        .iter()
        .rev()
        .map(|l| l.source.name.clone())
        .collect()
}
