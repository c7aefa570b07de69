//! `clp explain`: for what decides auth, backend, model and permissions at launch, which
//! source wins and why: the profile layer a value came from, how it reaches Claude Code,
//! what clp removes from the parent environment, and what Claude Code's own settings
//! layers (managed, the profile config dir's, the workspace's) could still change.
//!
//! Pure given the plan, the host and the layers' contents; [`read_layers`] is the only
//! function that reads files.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::host::Host;
use crate::merge::Loaded;
use crate::plan::{LaunchPlan, StatePaths};
use crate::profile::{Auth, Profile, Secret};

/// Claude Code's managed settings on Linux: they outrank everything.
pub const MANAGED: &str = "/etc/claude-code/managed-settings.json";

/// Claude Code's settings layers besides clp's own (`--settings`), as found on disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaudeLayers {
    /// Each layer: its name, path and contents (`None`: absent or unreadable).
    pub layers: Vec<(LayerName, PathBuf, Option<Value>)>,
}

/// A settings layer of Claude Code, highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerName {
    /// `/etc/claude-code/managed-settings.json`.
    Managed,
    /// The workspace's `.claude/settings.local.json`.
    Local,
    /// The workspace's `.claude/settings.json`.
    Project,
    /// The config dir's `settings.json`.
    User,
}

impl LayerName {
    fn label(self) -> &'static str {
        match self {
            LayerName::Managed => "managed",
            LayerName::Local => "workspace local",
            LayerName::Project => "workspace",
            LayerName::User => "profile config dir",
        }
    }
}

/// What a launch decides, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The profile.
    pub profile: String,
    /// Each decision: what it is, its value, where it came from, how it reaches Claude.
    pub decisions: Vec<Decision>,
    /// Parent variables clp removes, and whether each is set now.
    pub removed: Vec<Removed>,
    /// Claude Code's other settings layers and what each would change.
    pub layers: Vec<Layer>,
    /// What looks wrong.
    pub warnings: Vec<String>,
}

/// One decision of the launch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The variable or setting (`ANTHROPIC_BASE_URL`, `permissions.ask`).
    pub key: String,
    /// Its value (a credential shows as `(set)`).
    pub value: Value,
    /// Where it came from: a profile file and line, `--set`, a default, clp's policy.
    pub from: String,
    /// How it reaches Claude Code.
    pub via: String,
}

/// A parent variable clp removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The variable (or pattern, `ANTHROPIC_*`).
    pub name: String,
    /// The parent variables it matches now.
    pub set: Vec<String>,
}

/// One of Claude Code's settings layers and its effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    /// Which.
    pub name: LayerName,
    /// Where.
    pub path: PathBuf,
    /// Whether the file exists (and parses).
    pub present: bool,
    /// What it sets that matters, and whether that wins.
    pub effects: Vec<Effect>,
}

/// A key a layer sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    /// The key (`env.ANTHROPIC_BASE_URL`, `apiKeyHelper`).
    pub key: String,
    /// Whether it wins over clp's value, loses to it, or applies beside it.
    pub outcome: Outcome,
    /// Why.
    pub why: String,
}

/// What becomes of a key a layer sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It replaces clp's value.
    Wins,
    /// clp's value stands.
    Loses,
    /// clp sets nothing there: it takes effect.
    Applies,
}

/// Reads Claude Code's settings layers for `profile` (bounded, never through a final
/// link): managed, the workspace's local and shared ones, the config dir's.
pub fn read_layers(profile: &Profile) -> ClaudeLayers {
    let ws = &profile.workspace.path;
    let layers = [
        (LayerName::Managed, PathBuf::from(MANAGED)),
        (LayerName::Local, ws.join(".claude/settings.local.json")),
        (LayerName::Project, ws.join(".claude/settings.json")),
        (
            LayerName::User,
            profile.isolation.config_dir.join("settings.json"),
        ),
    ];
    ClaudeLayers {
        layers: layers
            .into_iter()
            .map(|(name, path)| {
                let value = read_json(&path);
                (name, path, value)
            })
            .collect(),
    }
}

fn read_json(path: &Path) -> Option<Value> {
    let dir = crate::fsafe::Dir::open_trusted(path.parent()?).ok()?;
    let bytes = dir.read_file(path.file_name()?, 1 << 20)?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether a variable's value is a credential (shown as `(set)`).
fn is_secret(key: &str) -> bool {
    key.ends_with("_TOKEN") || key.ends_with("_KEY") || key.contains("SECRET")
}

/// Explains `plan` (rendered from `profile`, loaded as `loaded`) on `host`, with
/// Claude Code's other settings layers as `layers`.
pub fn explain(
    profile: &Profile,
    loaded: &Loaded,
    plan: &LaunchPlan,
    host: &Host,
    layers: &ClaudeLayers,
) -> Explanation {
    let settings = flag_settings(profile, plan);
    let removed = plan
        .env
        .unset
        .iter()
        .map(|pattern| Removed {
            name: pattern.clone(),
            set: host
                .env
                .keys()
                .filter(|k| matches(pattern, k))
                .cloned()
                .collect(),
        })
        .collect();
    let layers: Vec<Layer> = layers
        .layers
        .iter()
        .map(|(name, path, value)| Layer {
            name: *name,
            path: path.clone(),
            present: value.is_some(),
            effects: value
                .as_ref()
                .and_then(Value::as_object)
                .map(|v| effects(*name, v, &settings, plan))
                .unwrap_or_default(),
        })
        .collect();
    let mut warnings = wrong_kind(profile, host);
    warnings.extend(layer_warnings(&layers));
    Explanation {
        profile: profile.name.clone(),
        decisions: decisions(loaded, plan, &settings),
        removed,
        layers,
        warnings,
    }
}

/// The variables and settings the launch decides, from clp's settings (`settings`) and
/// the plan's environment.
fn decisions(loaded: &Loaded, plan: &LaunchPlan, settings: &Map<String, Value>) -> Vec<Decision> {
    let provenance = |key: &str| loaded.provenance(key).to_string();
    let flag_env = settings
        .get("env")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (var, key) in SOURCES {
        let in_settings = flag_env.get(*var).and_then(Value::as_str);
        let in_env = plan.env.set.get(*var).map(String::as_str);
        let Some(value) = in_settings.or(in_env) else {
            continue;
        };
        let via = match (in_settings.is_some(), in_env.is_some()) {
            (true, true) => {
                "settings.json env (Claude Code's --settings layer) and the environment"
            }
            (true, false) => "settings.json env (Claude Code's --settings layer)",
            _ => "the environment",
        };
        let shown = if is_secret(var) && !value.is_empty() {
            Value::from("(set)")
        } else {
            Value::from(value)
        };
        let from = if *var == "ANTHROPIC_API_KEY" && value.is_empty() {
            "clp: emptied, so an inherited key is not sent beside the token".to_owned()
        } else if *var == "CLAUDE_CODE_MAX_OUTPUT_TOKENS" {
            format!(
                "clp: a sixteenth of model.context ({}), so that Claude Code compacts \
                 before the server refuses",
                provenance(key)
            )
        } else {
            provenance(key)
        };
        out.push(Decision {
            key: (*var).into(),
            value: shown,
            from,
            via: via.into(),
        });
    }
    for (var, secret) in &plan.env.secrets {
        let from = match secret {
            Secret::Literal(_) => "the profile".to_owned(),
            Secret::Env(name) => format!("your environment's `{name}` at launch"),
            Secret::Command(cmd) => format!("the output of `{cmd}` at launch"),
        };
        out.push(Decision {
            key: var.clone(),
            value: Value::from("(set at launch)"),
            from,
            via: "the environment".into(),
        });
    }
    if let Some(helper) = settings.get("apiKeyHelper") {
        out.push(Decision {
            key: "apiKeyHelper".into(),
            value: helper.clone(),
            from: provenance("auth.key-command"),
            via: "settings.json (Claude Code runs it for the key)".into(),
        });
    }
    for (k, v) in settings
        .get("permissions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        out.push(Decision {
            key: format!("permissions.{k}"),
            value: v.clone(),
            from: permission_source(k, &provenance),
            via: "settings.json (Claude Code's --settings layer)".into(),
        });
    }
    out
}

/// The variables clp sets for auth, backend, models and context, each with the profile
/// key it comes from.
const SOURCES: &[(&str, &str)] = &[
    ("ANTHROPIC_BASE_URL", "backend.url"),
    ("ANTHROPIC_AUTH_TOKEN", "auth.token"),
    ("ANTHROPIC_API_KEY", "auth.mode"),
    ("ANTHROPIC_MODEL", "model.default"),
    ("ANTHROPIC_DEFAULT_OPUS_MODEL", "model.opus"),
    ("ANTHROPIC_DEFAULT_SONNET_MODEL", "model.sonnet"),
    ("ANTHROPIC_DEFAULT_HAIKU_MODEL", "model.haiku"),
    ("CLAUDE_CODE_MAX_CONTEXT_TOKENS", "model.context"),
    ("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "model.context"),
    ("CLAUDE_CONFIG_DIR", "isolation.config-dir"),
];

/// A warning for each layer key that changes auth or backend, and for anything managed
/// settings set.
fn layer_warnings(layers: &[Layer]) -> Vec<String> {
    let mut out = Vec::new();
    for l in layers {
        for f in l.effects.iter().filter(|f| f.outcome != Outcome::Loses) {
            let auth = f.key == "apiKeyHelper" || f.key.starts_with("env.ANTHROPIC_");
            if auth || l.name == LayerName::Managed {
                out.push(format!(
                    "{} (`{}`) sets `{}`, which changes this launch: {}",
                    l.name.label(),
                    l.path.display(),
                    f.key,
                    f.why
                ));
            }
        }
    }
    out
}

/// Where a permission key of clp's settings comes from.
fn permission_source(key: &str, provenance: &dyn Fn(&str) -> String) -> String {
    match key {
        "allow" | "ask" | "deny" => format!(
            "clp's policy for the level, plus `permissions.{key}` ({})",
            provenance(&format!("permissions.{key}"))
        ),
        _ => "clp's policy for the level".into(),
    }
}

/// clp's own settings (the `--settings` file of the plan), empty when it writes none.
fn flag_settings(profile: &Profile, plan: &LaunchPlan) -> Map<String, Value> {
    let path = StatePaths::of(profile).settings;
    plan.files
        .iter()
        .find(|f| f.path == path)
        .and_then(|f| serde_json::from_str::<Value>(&f.contents).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// Whether the parent variable `name` matches the pattern (`ANTHROPIC_*` or a name).
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// What a layer's keys do next to clp's settings. Managed settings outrank
/// `--settings`; the others rank below it, so a key clp sets stands, and one it does not
/// set applies; permission rules of every layer add up (and an `ask` or `deny` rule
/// outranks an `allow` rule, whichever layer it is in).
fn effects(
    name: LayerName,
    layer: &Map<String, Value>,
    flag: &Map<String, Value>,
    plan: &LaunchPlan,
) -> Vec<Effect> {
    let mut out = Vec::new();
    let mut push = |key: String, clp_sets: bool, why: &str| {
        let outcome = if name == LayerName::Managed {
            Outcome::Wins
        } else if clp_sets {
            Outcome::Loses
        } else {
            Outcome::Applies
        };
        out.push(Effect {
            key,
            outcome,
            why: why.into(),
        });
    };
    let flag_env = flag.get("env").and_then(Value::as_object);
    if let Some(env) = layer.get("env").and_then(Value::as_object) {
        for k in env.keys() {
            let clp_sets = flag_env.is_some_and(|e| e.contains_key(k));
            let why = if k.starts_with("ANTHROPIC_") || k.starts_with("CLAUDE_CODE_") {
                "decides auth, backend or model"
            } else {
                "a variable for the session"
            };
            push(format!("env.{k}"), clp_sets, why);
        }
    }
    for (key, why) in [
        ("apiKeyHelper", "its output would be sent as the API key"),
        ("model", "the model, unless ANTHROPIC_MODEL is set"),
        (
            "hooks",
            "commands Claude Code runs at session events, without asking",
        ),
        (
            "statusLine",
            "a command Claude Code runs for the status line",
        ),
        (
            "enableAllProjectMcpServers",
            "starts the workspace's MCP servers",
        ),
        ("disableAllHooks", "turns every hook off"),
    ] {
        if layer.contains_key(key) {
            let clp_sets = flag.contains_key(key)
                || (key == "model" && plan.env.set.contains_key("ANTHROPIC_MODEL"))
                || (key == "model" && flag_env.is_some_and(|e| e.contains_key("ANTHROPIC_MODEL")));
            push(key.into(), clp_sets, why);
        }
    }
    if let Some(perms) = layer.get("permissions").and_then(Value::as_object) {
        let flag_perms = flag.get("permissions").and_then(Value::as_object);
        for k in perms.keys() {
            let (clp_sets, why) = match k.as_str() {
                "allow" => (
                    false,
                    "allow rules add up; clp's `ask` and `deny` rules still outrank them",
                ),
                "ask" | "deny" => (false, "rules add up across layers"),
                _ => (
                    flag_perms.is_some_and(|p| p.contains_key(k)),
                    "a permission setting",
                ),
            };
            push(format!("permissions.{k}"), clp_sets, why);
        }
    }
    if layer.contains_key("sandbox") {
        push(
            "sandbox".into(),
            flag.contains_key("sandbox"),
            "Claude Code's Bash sandbox",
        );
    }
    out
}

/// Warnings about a credential of the wrong kind: an OAuth token (`sk-ant-oat...`) given
/// as an API key or bearer token, an API key (`sk-ant-api...`) given as a bearer token.
fn wrong_kind(profile: &Profile, host: &Host) -> Vec<String> {
    let (mode, secret) = match &profile.auth {
        Auth::Oauth => return Vec::new(),
        Auth::ApiKey { from } => ("api-key", from),
        Auth::AuthToken { from } => ("auth-token", from),
    };
    let (value, source) = match secret {
        Secret::Literal(t) => (Some(t.as_str()), "`auth.token`".to_owned()),
        Secret::Env(name) => (host.var(name), format!("`{name}`")),
        Secret::Command(_) => (None, String::new()),
    };
    let Some(value) = value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if value.starts_with("sk-ant-oat") {
        out.push(format!(
            "{source} holds an OAuth token (`sk-ant-oat...`), not an API key: Anthropic \
             refuses it as `{mode}`; use the `oauth` profile for your subscription"
        ));
    } else if value.starts_with("sk-ant-api") && mode == "auth-token" {
        out.push(format!(
            "{source} holds an Anthropic API key (`sk-ant-api...`) sent as a bearer token: \
             set `auth.mode = \"api-key\"`"
        ));
    }
    out
}

/// The explanation as text.
pub fn text(e: &Explanation) -> String {
    let mut t = format!("profile `{}`\n\n", e.profile);
    t.push_str(
        "what the launch decides (value, where it came from, how it reaches Claude Code):\n",
    );
    for d in &e.decisions {
        t.push_str(&format!(
            "  {} = {}\n      from {}\n      via {}\n",
            d.key, d.value, d.from, d.via
        ));
    }
    t.push_str("\nremoved from your environment:\n");
    for r in &e.removed {
        if r.set.is_empty() {
            t.push_str(&format!("  {} (not set now)\n", r.name));
        } else {
            t.push_str(&format!("  {} (set now: {})\n", r.name, r.set.join(", ")));
        }
    }
    t.push_str(
        "\nClaude Code's other settings layers (managed outranks clp's --settings; the others \
         rank below it):\n",
    );
    for l in &e.layers {
        let state = if l.present { "" } else { " (absent)" };
        t.push_str(&format!(
            "  {}: {}{state}\n",
            l.name.label(),
            l.path.display()
        ));
        for f in &l.effects {
            let outcome = match f.outcome {
                Outcome::Wins => "WINS over clp",
                Outcome::Loses => "loses to clp",
                Outcome::Applies => "applies (clp sets nothing there)",
            };
            t.push_str(&format!("      {}: {outcome}: {}\n", f.key, f.why));
        }
    }
    if !e.warnings.is_empty() {
        t.push('\n');
        for w in &e.warnings {
            t.push_str(&format!("warning: {w}\n"));
        }
    }
    // Values come from files a repository or a session may have written: each line
    // with its control characters escaped.
    t.lines()
        .map(|l| crate::diag::printable(l) + "\n")
        .collect()
}
