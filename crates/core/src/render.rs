//! Rendering: `(Profile, Host) -> LaunchPlan`, a pure function.
//!
//! The plan holds everything a launch does (files to write, the child's environment, the
//! argv, the checks to run first), so `clp render`, `--dry-run` and snapshot tests see
//! exactly what `clp use` executes. Level-specific argv lives in [`crate::sandbox`] (B)
//! and [`crate::container`] (C).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::host::Host;
use crate::model::{Level, NetworkMode};
use crate::resolve::{Auth, Profile, Secret};

/// Everything one launch does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchPlan {
    /// The profile's name.
    pub profile: String,
    /// Its isolation level.
    pub level: Level,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The child's environment.
    pub env: EnvPlan,
    /// The child's working directory.
    pub cwd: PathBuf,
    /// Directories to create first (mode 0700).
    pub dirs: Vec<PathBuf>,
    /// Files to write first.
    pub files: Vec<PlannedFile>,
    /// Symlinks to create when nothing exists at their path.
    pub links: Vec<PlannedLink>,
    /// Checks to run before exec.
    pub preflight: Vec<Preflight>,
    /// What the user should know about this launch (shown by `show`, `doctor`, dry runs).
    pub notes: Vec<String>,
    /// Owner (uid, gid) of the dirs and files the plan creates, when clp runs as root and
    /// the boundary runs as another user.
    pub owner: Option<(u32, u32)>,
}

/// A profile that cannot be launched on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// The child's environment: what it inherits, what is removed, what is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvPlan {
    /// `true`: start from the parent environment (level A). `false`: start empty and copy
    /// only `pass` (levels B and C).
    pub inherit: bool,
    /// Parent variables removed (credentials of other modes), by name or `PREFIX*`.
    pub unset: Vec<String>,
    /// Parent variables copied when set (when not inheriting), by name or `PREFIX*`.
    pub pass: Vec<String>,
    /// Variables set.
    pub set: BTreeMap<String, String>,
    /// Variables whose value is a secret fetched at launch, never rendered.
    pub secrets: BTreeMap<String, Secret>,
}

impl EnvPlan {
    /// The child's environment given the parent's and the fetched secrets.
    pub fn build(
        &self,
        parent: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let matches = |pattern: &String, name: &str| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        };
        let mut env: BTreeMap<String, String> = parent
            .iter()
            .filter(|(k, _)| {
                if self.inherit {
                    !self.unset.iter().any(|p| matches(p, k))
                } else {
                    self.pass.iter().any(|p| matches(p, k))
                        && !self.unset.iter().any(|p| matches(p, k))
                }
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend(self.set.clone());
        env.extend(secrets.clone());
        env
    }
}

/// A file written before launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    /// Where.
    pub path: PathBuf,
    /// What.
    pub contents: String,
    /// Unix mode.
    pub mode: u32,
    /// Replace when different, or create only when missing.
    pub policy: WritePolicy,
}

/// How a planned file treats an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WritePolicy {
    /// clp owns the file: replace it atomically when its contents differ.
    Replace,
    /// Someone else owns it once it exists (Claude Code's state): create only if missing.
    CreateIfMissing,
}

/// A symlink created when nothing exists at `link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedLink {
    /// The link's path.
    pub link: PathBuf,
    /// What it points to.
    pub target: PathBuf,
}

/// A check before exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum Preflight {
    /// `GET url` must answer 200; 503 means loading (wait up to `wait` seconds).
    Health {
        /// Full URL of the health path.
        url: String,
        /// Seconds to wait while loading.
        wait: u32,
    },
    /// Ask the backend to serve the profile's model (before waiting for it).
    Switch {
        /// How.
        switch: crate::resolve::Switch,
    },
    /// `GET url` lists models; warn when `model` is not among them, or, when `required`
    /// (after a switch), wait for it as long as the health check waits.
    Model {
        /// Full URL of the models path.
        url: String,
        /// The model the profile asks for.
        model: String,
        /// Wait for the model instead of warning.
        required: bool,
    },
    /// A program must be installed.
    Program {
        /// Its name.
        name: String,
        /// How to install it.
        install: String,
    },
}

/// Names of the files a plan writes into the profile's state dir.
pub const SETTINGS_FILE: &str = "settings.json";

/// Parent variables that carry credentials or backend choices of some mode. Removed from
/// every non-OAuth profile's environment before its own are set.
pub const SCRUBBED: &[&str] = &[
    "ANTHROPIC_*",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_REFRESH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
    "CLAUDE_CODE_SKIP_VERTEX_AUTH",
    "CLAUDE_CODE_SKIP_FOUNDRY_AUTH",
    "AWS_BEARER_TOKEN_BEDROCK",
    "CLAUDE_CONFIG_DIR",
    "CLAUDECODE",
    "CLAUDE_CODE_ENTRYPOINT",
];

/// Parent variables removed for the OAuth profile: anything that would replace the
/// subscription login or its backend.
pub const SCRUBBED_OAUTH: &[&str] = &[
    "ANTHROPIC_*",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "AWS_BEARER_TOKEN_BEDROCK",
    "CLAUDECODE",
    "CLAUDE_CODE_ENTRYPOINT",
];

/// The IDE integration's variables, passed through at every level.
pub const IDE_VARS: &[&str] = &[
    "CLAUDE_CODE_SSE_PORT",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "VSCODE_*",
];

/// Permission rules every non-OAuth profile gets: Bash always asks, privilege escalation
/// is denied outright.
pub const DEFAULT_ASK: &[&str] = &["Bash"];
/// See [`DEFAULT_ASK`].
pub const DEFAULT_DENY: &[&str] = &[
    "Bash(sudo)",
    "Bash(sudo *)",
    "Bash(su)",
    "Bash(su *)",
    "Bash(doas *)",
    "Bash(pkexec *)",
];

/// Paths of a profile's own state, all under `<state dir>/<profile>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePaths {
    /// `<state>/<profile>`.
    pub root: PathBuf,
    /// The rendered `settings.json`.
    pub settings: PathBuf,
    /// `TMPDIR` for Claude Code.
    pub tmp: PathBuf,
    /// Empty dir for `ANTHROPIC_CONFIG_DIR`.
    pub anthropic: PathBuf,
    /// Persistent home inside the sandbox (level B) or container (level C).
    pub home: PathBuf,
}

impl StatePaths {
    /// The state paths of `profile`.
    pub fn of(profile: &Profile) -> StatePaths {
        let root = profile.state_dir.clone();
        StatePaths {
            settings: root.join(SETTINGS_FILE),
            tmp: root.join("tmp"),
            anthropic: root.join("anthropic"),
            home: root.join("home"),
            root,
        }
    }
}

/// Renders the launch of Claude Code (`claude_args` are the user's extra arguments).
pub fn render_use(
    profile: &Profile,
    host: &Host,
    claude_args: &[String],
) -> Result<LaunchPlan, RenderError> {
    let mut argv = vec![claude_program(profile, host)];
    let mut plan = render_common(profile, host);
    if plan
        .files
        .iter()
        .any(|f| f.path == StatePaths::of(profile).settings)
    {
        argv.push("--settings".into());
        argv.push(StatePaths::of(profile).settings.display().to_string());
    }
    argv.extend(profile.claude.args.iter().cloned());
    argv.extend(claude_args.iter().cloned());
    plan.argv = argv;
    wrap(profile, host, plan)
}

/// Renders running `command` under the profile's environment and boundary.
pub fn render_run(
    profile: &Profile,
    host: &Host,
    command: &[String],
) -> Result<LaunchPlan, RenderError> {
    let mut plan = render_common(profile, host);
    plan.argv = command.to_vec();
    wrap(profile, host, plan)
}

fn wrap(profile: &Profile, host: &Host, plan: LaunchPlan) -> Result<LaunchPlan, RenderError> {
    match profile.isolation.level {
        Level::Env => Ok(plan),
        Level::Sandbox => crate::sandbox::wrap(profile, host, plan),
        Level::Container => crate::container::wrap(profile, host, plan),
    }
}

/// Where the profile's Claude Code binary resolves, or its name when not found.
pub fn claude_program(profile: &Profile, host: &Host) -> String {
    host.program(&profile.claude.command)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| profile.claude.command.clone())
}

/// The plan without argv and without the level's wrapping.
fn render_common(profile: &Profile, host: &Host) -> LaunchPlan {
    let paths = StatePaths::of(profile);
    let mut plan = LaunchPlan {
        profile: profile.name.clone(),
        level: profile.isolation.level,
        argv: Vec::new(),
        env: render_env(profile, &paths),
        cwd: profile.workspace.path.clone(),
        dirs: Vec::new(),
        files: Vec::new(),
        links: Vec::new(),
        preflight: preflight(profile),
        notes: Vec::new(),
        owner: None,
    };
    if profile.network.mode != NetworkMode::Open {
        // Said plainly: only Bash is filtered today.
        plan.notes.push(format!(
            "network.mode `{}` is enforced for Bash commands by Claude Code's own sandbox \
             (allowed: the backend{}); the Claude Code process itself is not network-filtered",
            match profile.network.mode {
                NetworkMode::Allowlist => "allowlist",
                _ => "offline",
            },
            if profile.network.mode == NetworkMode::Allowlist && !profile.network.allow.is_empty() {
                format!(", {}", profile.network.allow.join(", "))
            } else {
                String::new()
            }
        ));
    }
    let settings = render_settings(profile);
    let oauth_plain = profile.is_oauth() && profile.isolation.level == Level::Env;
    if !oauth_plain || settings.len() > 1 {
        plan.dirs.push(paths.root.clone());
        plan.files.push(PlannedFile {
            path: paths.settings.clone(),
            contents: settings_text(&settings),
            mode: 0o600,
            policy: WritePolicy::Replace,
        });
    }
    if !profile.is_oauth() {
        plan.dirs
            .extend([paths.tmp.clone(), paths.anthropic.clone()]);
        plan.dirs.push(profile.isolation.config_dir.clone());
        plan.files.push(PlannedFile {
            path: profile.isolation.config_dir.join(".claude.json"),
            contents: seed_claude_json(profile),
            mode: 0o600,
            policy: WritePolicy::CreateIfMissing,
        });
        if host.ide_dir_exists && profile.isolation.level == Level::Env {
            plan.links.push(PlannedLink {
                link: profile.isolation.config_dir.join("ide"),
                target: host.main_claude_dir().join("ide"),
            });
        }
    }
    plan
}

fn preflight(profile: &Profile) -> Vec<Preflight> {
    let mut checks = Vec::new();
    if let Some(backend) = profile.backend.as_ref().filter(|b| b.check) {
        if let Some(switch) = &backend.switch {
            checks.push(Preflight::Switch {
                switch: switch.clone(),
            });
        }
        checks.push(Preflight::Health {
            url: format!("{}{}", backend.url, backend.health),
            wait: backend.wait,
        });
        let models = backend
            .models
            .clone()
            .or_else(|| backend.switch.as_ref().map(|_| "/v1/models".to_owned()));
        if let (Some(models), Some(model)) = (models, &profile.model.default) {
            checks.push(Preflight::Model {
                url: format!("{}{}", backend.url, models),
                model: model.clone(),
                required: backend.switch.is_some(),
            });
        }
    }
    checks
}

/// The child's environment.
fn render_env(profile: &Profile, paths: &StatePaths) -> EnvPlan {
    let mut env = EnvPlan {
        inherit: true,
        unset: Vec::new(),
        pass: Vec::new(),
        set: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    if profile.is_oauth() {
        env.unset = SCRUBBED_OAUTH.iter().map(|s| s.to_string()).collect();
        if !profile.isolation.main_config {
            env.set.insert(
                "CLAUDE_CONFIG_DIR".into(),
                profile.isolation.config_dir.display().to_string(),
            );
        }
    } else {
        env.unset = SCRUBBED.iter().map(|s| s.to_string()).collect();
        env.set.extend(backend_env(profile));
        let set = |env: &mut EnvPlan, k: &str, v: &Path| {
            env.set.insert(k.into(), v.display().to_string());
        };
        set(&mut env, "CLAUDE_CONFIG_DIR", &profile.isolation.config_dir);
        set(&mut env, "TMPDIR", &paths.tmp);
        set(&mut env, "ANTHROPIC_CONFIG_DIR", &paths.anthropic);
        match &profile.auth {
            Auth::AuthToken {
                from: Secret::Literal(t),
            } => {
                env.set.insert("ANTHROPIC_AUTH_TOKEN".into(), t.clone());
            }
            Auth::AuthToken { from } => {
                env.secrets
                    .insert("ANTHROPIC_AUTH_TOKEN".into(), from.clone());
            }
            Auth::ApiKey {
                from: from @ Secret::Env(_),
            } => {
                env.secrets.insert("ANTHROPIC_API_KEY".into(), from.clone());
            }
            Auth::ApiKey { .. } | Auth::Oauth => {}
        }
    }
    for (k, v) in &profile.env {
        env.set.insert(k.clone(), v.clone());
    }
    env
}

/// The variables that define the backend, pinned both in the environment and in the
/// settings file's `env` block (which outranks the environment and project settings).
fn backend_env(profile: &Profile) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    if let Some(backend) = &profile.backend {
        set("ANTHROPIC_BASE_URL", &backend.url);
        set("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
        if backend.local {
            // The per-request attribution block changes every request's prefix, which
            // defeats llama.cpp's prompt cache.
            set("CLAUDE_CODE_ATTRIBUTION_HEADER", "0");
        }
    }
    match &profile.auth {
        Auth::AuthToken { from } => {
            // An inherited key would be sent as `x-api-key` next to the bearer token.
            set("ANTHROPIC_API_KEY", "");
            if let Secret::Literal(t) = from {
                set("ANTHROPIC_AUTH_TOKEN", t);
            }
        }
        Auth::ApiKey { .. } => {}
        Auth::Oauth => return env,
    }
    let m = &profile.model;
    for (k, v) in [
        ("ANTHROPIC_MODEL", &m.default),
        ("ANTHROPIC_DEFAULT_OPUS_MODEL", &m.opus),
        ("ANTHROPIC_DEFAULT_SONNET_MODEL", &m.sonnet),
        ("ANTHROPIC_DEFAULT_HAIKU_MODEL", &m.haiku),
    ] {
        if let Some(v) = v {
            set(k, v);
        }
    }
    if let Some(c) = m.context {
        set("CLAUDE_CODE_MAX_CONTEXT_TOKENS", &c.to_string());
    }
    env
}

/// The settings.json object for `profile`.
pub fn render_settings(profile: &Profile) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert(
        "$schema".into(),
        json!("https://json.schemastore.org/claude-code-settings.json"),
    );
    for (k, v) in &profile.claude.settings {
        s.insert(k.clone(), v.clone());
    }
    let env = backend_env(profile);
    if !env.is_empty() {
        let mut merged = s
            .get("env")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in env {
            merged.insert(k, json!(v));
        }
        s.insert("env".into(), Value::Object(merged));
    }
    if let Auth::ApiKey {
        from: Secret::Command(cmd),
    } = &profile.auth
    {
        s.insert("apiKeyHelper".into(), json!(cmd));
    }
    let safe = !profile.is_oauth() || profile.isolation.level != Level::Env;
    let p = &profile.permissions;
    if safe || !p.allow.is_empty() || !p.ask.is_empty() || !p.deny.is_empty() {
        let mut perms = s
            .get("permissions")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let rules = |defaults: &[&str], extra: &[String]| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for r in defaults
                .iter()
                .map(|s| s.to_string())
                .chain(extra.iter().cloned())
            {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
            out
        };
        let (ask, deny): (&[&str], &[&str]) = if safe {
            (DEFAULT_ASK, DEFAULT_DENY)
        } else {
            (&[], &[])
        };
        // Bash must keep asking: an allow rule for Bash would answer before the ask.
        let allow: Vec<String> = rules(&[], &p.allow)
            .into_iter()
            .filter(|r| !(safe && (r == "Bash" || r.starts_with("Bash("))))
            .collect();
        for (key, list) in [
            ("allow", allow),
            ("ask", rules(ask, &p.ask)),
            ("deny", rules(deny, &p.deny)),
        ] {
            if !list.is_empty() {
                perms.insert(key.into(), json!(list));
            }
        }
        if safe {
            // Auto mode lets the model approve its own tool calls: never with a local
            // model, and never for Bash.
            perms.insert("defaultMode".into(), json!("default"));
            perms.insert("disableBypassPermissionsMode".into(), json!("disable"));
            perms.insert("disableAutoMode".into(), json!("disable"));
        }
        s.insert("permissions".into(), Value::Object(perms));
    }
    if profile.isolation.level == Level::Sandbox {
        s.insert(
            "sandbox".into(),
            crate::sandbox::inner_sandbox_settings(profile),
        );
    }
    if profile.network.mode != NetworkMode::Open && profile.isolation.level == Level::Env {
        // Level A has no OS boundary; the inner sandbox is the only network filter.
        s.insert(
            "sandbox".into(),
            crate::sandbox::inner_sandbox_settings(profile),
        );
    }
    s
}

/// The settings object as file text.
pub fn settings_text(settings: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(settings).expect("settings serialize");
    text.push('\n');
    text
}

/// The first-launch `.claude.json` of a fresh config dir: onboarding done, and the
/// workspace trusted only when the profile says so.
fn seed_claude_json(profile: &Profile) -> String {
    let mut seed = json!({ "hasCompletedOnboarding": true });
    if profile.workspace.trust {
        seed["projects"] = json!({
            profile.workspace.path.display().to_string(): { "hasTrustDialogAccepted": true }
        });
    }
    let mut text = serde_json::to_string_pretty(&seed).expect("seed serializes");
    text.push('\n');
    text
}

/// Replaces machine- and user-specific parts of a plan with placeholders, so renders
/// compare equal across machines: `{home}`, `{state}`, `{workspace}`, `{uid}`, `{gid}`,
/// `{user}`, and `{bin:NAME}` for resolved program paths.
pub fn portable(plan: &LaunchPlan, host: &Host) -> LaunchPlan {
    let mut pairs: Vec<(String, String)> = host
        .programs
        .iter()
        .map(|(name, path)| (path.display().to_string(), format!("{{bin:{name}}}")))
        .collect();
    pairs.push((plan.cwd.display().to_string(), "{workspace}".into()));
    pairs.push((host.state_dir.display().to_string(), "{state}".into()));
    pairs.push((host.home.display().to_string(), "{home}".into()));
    // Longest first, so `/home/u/.local/state/clp` wins over `/home/u`.
    pairs.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    let fix = |s: &str| -> String {
        let mut out = s.to_owned();
        for (from, to) in &pairs {
            if !from.is_empty() && from != "/" {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    };
    let ids = |s: String| -> String {
        match s.as_str() {
            _ if s == host.uid.to_string() => "{uid}".into(),
            _ if s == host.gid.to_string() => "{gid}".into(),
            _ if s == host.user => "{user}".into(),
            _ => s
                .replace(&format!("{}:{}", host.uid, host.gid), "{uid}:{gid}")
                .replace(&format!("--uid={}", host.uid), "--uid={uid}"),
        }
    };
    let path = |p: &PathBuf| PathBuf::from(fix(&p.display().to_string()));
    LaunchPlan {
        profile: plan.profile.clone(),
        level: plan.level,
        argv: plan.argv.iter().map(|a| ids(fix(a))).collect(),
        env: EnvPlan {
            set: plan
                .env
                .set
                .iter()
                .map(|(k, v)| (k.clone(), fix(v)))
                .collect(),
            ..plan.env.clone()
        },
        cwd: path(&plan.cwd),
        dirs: plan.dirs.iter().map(path).collect(),
        files: plan
            .files
            .iter()
            .map(|f| PlannedFile {
                path: path(&f.path),
                contents: fix(&f.contents),
                ..f.clone()
            })
            .collect(),
        links: plan
            .links
            .iter()
            .map(|l| PlannedLink {
                link: path(&l.link),
                target: path(&l.target),
            })
            .collect(),
        preflight: plan.preflight.clone(),
        notes: plan.notes.iter().map(|n| fix(n)).collect(),
        // Numeric ids differ between machines; the argv carries `{uid}` instead.
        owner: None,
    }
}

/// The plan as the files `clp render --out` writes: `settings.json`, `env`, `argv`.
pub fn render_files(plan: &LaunchPlan) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(settings) = plan
        .files
        .iter()
        .find(|f| f.path.file_name().is_some_and(|n| n == SETTINGS_FILE))
    {
        out.push((SETTINGS_FILE.to_owned(), settings.contents.clone()));
    }
    out.push(("env".to_owned(), env_text(&plan.env)));
    let mut argv = plan.argv.join("\n");
    argv.push('\n');
    out.push(("argv".to_owned(), argv));
    out
}

/// The environment as sorted `KEY=VALUE` lines, after comments saying what is inherited.
pub fn env_text(env: &EnvPlan) -> String {
    let mut text = String::new();
    if env.inherit {
        text.push_str("# inherits the parent environment, except:\n");
        for u in &env.unset {
            text.push_str(&format!("# unset {u}\n"));
        }
    } else {
        text.push_str("# starts empty; copied from the parent when set:\n");
        for p in &env.pass {
            text.push_str(&format!("# pass {p}\n"));
        }
    }
    let mut lines: Vec<String> = env
        .set
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(env.secrets.iter().map(|(k, s)| {
            format!(
                "{k}=<{}>",
                match s {
                    Secret::Env(v) => format!("from ${v}"),
                    Secret::Command(c) => format!("from `{c}`"),
                    Secret::Literal(_) => "literal".into(),
                }
            )
        }))
        .collect();
    lines.sort();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    text
}

/// The plan as one text, every part under a `==== name ====` header.
pub fn plan_text(plan: &LaunchPlan) -> String {
    let mut text = String::new();
    for (name, body) in render_files(plan) {
        text.push_str(&format!("==== {name} ====\n{body}"));
    }
    text.push_str(&format!("==== cwd ====\n{}\n", plan.cwd.display()));
    let mut files = String::new();
    for d in &plan.dirs {
        files.push_str(&format!("dir  {}\n", d.display()));
    }
    for f in &plan.files {
        let how = match f.policy {
            WritePolicy::Replace => "write",
            WritePolicy::CreateIfMissing => "seed",
        };
        files.push_str(&format!("{how} {} ({:o})\n", f.path.display(), f.mode));
    }
    for l in &plan.links {
        files.push_str(&format!(
            "link {} -> {}\n",
            l.link.display(),
            l.target.display()
        ));
    }
    text.push_str(&format!("==== files ====\n{files}"));
    if !plan.preflight.is_empty() {
        text.push_str("==== preflight ====\n");
        for p in &plan.preflight {
            text.push_str(&match p {
                Preflight::Health { url, wait } => format!("health GET {url} (wait {wait}s)\n"),
                Preflight::Switch { switch } => match switch {
                    crate::resolve::Switch::Command(c) => format!("switch `{c}`\n"),
                    crate::resolve::Switch::Request { method, url, body } => format!(
                        "switch {method} {url}{}\n",
                        body.as_ref().map(|b| format!(" {b}")).unwrap_or_default()
                    ),
                },
                Preflight::Model {
                    url,
                    model,
                    required,
                } => format!(
                    "model  GET {url} lists `{model}`{}\n",
                    if *required { " (wait for it)" } else { "" }
                ),
                Preflight::Program { name, install } => {
                    format!("needs  {name} (install: {install})\n")
                }
            });
        }
    }
    if !plan.notes.is_empty() {
        text.push_str("==== notes ====\n");
        for n in &plan.notes {
            text.push_str(&format!("{n}\n"));
        }
    }
    text
}
