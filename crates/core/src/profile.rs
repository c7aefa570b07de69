//! The resolved profile: every default applied, every path absolute, the rules that need
//! the whole merged profile or the host checked.
//!
//! [`resolve`] is the one place defaults live, one function per table. Its output has no
//! unresolved options: an `Option` left in [`Profile`] means "absent" (no backend, no
//! alias), never "use the default later".

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::host::Host;
use crate::merge::Loaded;
use crate::model::{
    AuthMode, BaseUrl, Engine, HostPattern, HttpMethod, Level, NetworkMode, RawAuth, RawBackend,
    RawClaude, RawContainer, RawIsolation, RawModel, RawNetwork, RawPermissions, RawProfile,
    RawSwitch, RawWorkspace, Shared, VersionSpec,
};
use crate::rules::{credential_mismatch, CREDENTIAL_KEYS};

/// A profile ready to render.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Shell alias for `clp use NAME`.
    pub alias: Option<String>,
    /// How Claude Code authenticates.
    pub auth: Auth,
    /// The server Claude Code talks to; `None` means Anthropic's own API.
    pub backend: Option<Backend>,
    /// Model names.
    pub model: Models,
    /// Isolation level and config dir.
    pub isolation: Isolation,
    /// Network policy.
    pub network: Network,
    /// Project dir and extra paths.
    pub workspace: Workspace,
    /// Extra permission rules.
    pub permissions: Permissions,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// The Claude Code binary and settings.
    pub claude: Claude,
    /// Container engine and image.
    pub container: Container,
    /// clp's own state for this profile: `<state dir>/<name>`.
    pub state_dir: PathBuf,
}

/// How Claude Code authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Auth {
    /// The normal subscription login; nothing injected.
    Oauth,
    /// An API key (`x-api-key`).
    ApiKey {
        /// Where the key comes from.
        from: Secret,
    },
    /// A bearer token (`Authorization: Bearer`).
    AuthToken {
        /// Where the token comes from.
        from: Secret,
    },
}

/// Where a credential comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Secret {
    /// Written in the profile (only non-secret placeholders such as `llamacpp`).
    Literal(String),
    /// Read from the parent environment at launch.
    Env(String),
    /// Printed by a shell command at launch.
    Command(String),
}

/// The server Claude Code talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Backend {
    /// Base URL without a trailing slash.
    pub url: BaseUrl,
    /// Readiness path.
    pub health: String,
    /// Model list path, when the profile wants the model checked.
    pub models: Option<String>,
    /// Whether to probe before launch.
    pub check: bool,
    /// Seconds to wait for a loading backend.
    pub wait: u32,
    /// How to make the backend serve the profile's model.
    pub switch: Option<Switch>,
}

impl Backend {
    /// Whether the backend runs on this machine's loopback.
    pub fn is_local(&self) -> bool {
        self.url.is_loopback()
    }
}

/// How to make the backend serve the profile's model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Switch {
    /// A shell command.
    Command(String),
    /// An HTTP request.
    Request {
        /// `GET`, `POST` or `PUT`.
        method: HttpMethod,
        /// Absolute URL.
        url: String,
        /// Body, if any.
        body: Option<String>,
    },
}

/// Model names; `None` leaves Claude Code's choice alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Models {
    /// `ANTHROPIC_MODEL`.
    pub default: Option<String>,
    /// `ANTHROPIC_DEFAULT_OPUS_MODEL`.
    pub opus: Option<String>,
    /// `ANTHROPIC_DEFAULT_SONNET_MODEL`.
    pub sonnet: Option<String>,
    /// `ANTHROPIC_DEFAULT_HAIKU_MODEL`.
    pub haiku: Option<String>,
    /// `CLAUDE_CODE_MAX_CONTEXT_TOKENS`.
    pub context: Option<u32>,
}

/// Isolation level and config dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Isolation {
    /// A, B or C.
    pub level: Level,
    /// `CLAUDE_CONFIG_DIR` (or the normal `~/.claude`).
    pub config_dir: PathBuf,
    /// Whether the config dir is the main install's `~/.claude`.
    pub main_config: bool,
    /// User the sandbox runs as when clp runs as root.
    pub user: Option<String>,
}

/// Network policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    /// Open, allowlist or offline.
    pub mode: NetworkMode,
    /// Allowed host patterns.
    pub allow: Vec<HostPattern>,
}

/// Project dir and extra paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Workspace {
    /// The project directory (absolute).
    pub path: PathBuf,
    /// Extra read-only paths.
    pub read_only: Vec<PathBuf>,
    /// Extra writable paths.
    pub writable: Vec<PathBuf>,
    /// Paths (relative to the workspace) kept read-only inside B and C.
    pub protect: Vec<PathBuf>,
    /// Pre-accept the workspace trust dialog.
    pub trust: bool,
}

/// Extra permission rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permissions {
    /// Allowed without asking.
    pub allow: Vec<String>,
    /// Always asked.
    pub ask: Vec<String>,
    /// Always denied.
    pub deny: Vec<String>,
}

/// The Claude Code binary and settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Claude {
    /// Executable name or path.
    pub command: String,
    /// Arguments before the user's.
    pub args: Vec<String>,
    /// Required version.
    pub version: Option<VersionSpec>,
    /// Extra settings keys.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// What of the main install's `~/.claude` the profile sees read-only.
    pub share: Vec<Shared>,
}

/// Container engine and image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    /// Docker, Podman or the first found.
    pub engine: Engine,
    /// Image name.
    pub image: String,
}

impl Profile {
    /// Whether this profile is the normal subscription install (OAuth in `~/.claude`).
    pub fn is_oauth(&self) -> bool {
        matches!(self.auth, Auth::Oauth)
    }
}

/// Problems found while resolving, each placed where the winning layer set its key.
struct Problems<'a> {
    loaded: &'a Loaded,
    found: Vec<Diagnostic>,
}

impl Problems<'_> {
    fn at(&mut self, key: &str, d: Diagnostic) {
        self.found.push(self.loaded.diagnostic_at(key, d));
    }
}

/// Applies defaults, makes paths absolute and checks the rules that need the whole
/// merged profile or the host. Problems point at the layer that set the key.
pub fn resolve(loaded: &Loaded, host: &Host) -> Result<Profile, Diagnostics> {
    let RawProfile {
        description,
        extends: _,
        alias,
        auth,
        backend,
        model,
        isolation,
        network,
        workspace,
        permissions,
        env,
        claude,
        container,
    } = loaded.raw.clone();
    let mut p = Problems {
        loaded,
        found: Vec::new(),
    };
    let name = loaded.name.clone();
    let state_dir = host.state_dir.join(&name);

    let auth = resolve_auth(auth.unwrap_or_default(), &mut p);
    let oauth = matches!(auth, Some(Auth::Oauth));
    let backend = backend.and_then(resolve_backend);
    if oauth && backend.is_some() {
        p.at(
            "backend.url",
            Diagnostic::new(
                "backend.url",
                "an `oauth` profile sends your subscription login, not to a custom backend",
            )
            .with_hint("set `auth.mode = \"auth-token\"` (llama-server takes any token)"),
        );
    }
    let isolation = resolve_isolation(
        isolation.unwrap_or_default(),
        oauth,
        &state_dir,
        host,
        &mut p,
    );
    let workspace = resolve_workspace(workspace.unwrap_or_default(), isolation.level, host, &mut p);
    let claude = resolve_claude(claude.unwrap_or_default());
    let container = resolve_container(container.unwrap_or_default(), &claude);

    let Some(auth) = auth.filter(|_| p.found.is_empty()) else {
        let mut d = Diagnostics(p.found);
        d.sort();
        return Err(d);
    };
    Ok(Profile {
        description: description.unwrap_or_default(),
        alias: alias.map(|a| a.into_string()),
        auth,
        backend,
        model: resolve_model(model.unwrap_or_default()),
        isolation,
        network: resolve_network(network.unwrap_or_default()),
        workspace,
        permissions: resolve_permissions(permissions.unwrap_or_default()),
        env: env
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.into_string(), v))
            .collect(),
        claude,
        container,
        state_dir,
        name,
    })
}

fn resolve_auth(raw: RawAuth, p: &mut Problems) -> Option<Auth> {
    let RawAuth {
        mode,
        token,
        token_env,
        token_command,
        key_env,
        key_command,
    } = raw;
    let mode = mode.unwrap_or(AuthMode::Oauth);
    if mode == AuthMode::Oauth {
        let set = [
            token.is_some(),
            token_env.is_some(),
            token_command.is_some(),
            key_env.is_some(),
            key_command.is_some(),
        ];
        for ((key, _), set) in CREDENTIAL_KEYS.iter().zip(set) {
            if let Some(d) = credential_mismatch(key, "oauth").filter(|_| set) {
                p.at(key, d);
            }
        }
    }
    // Sources set in different layers of an `extends` chain: the most specific layer's
    // wins (a child's `token-env` replaces its parent's literal `token`).
    let loaded = p.loaded;
    let latest = |options: Vec<(&str, Option<Secret>)>| -> Option<Secret> {
        options
            .into_iter()
            .filter_map(|(key, s)| Some((loaded.rank(key).unwrap_or(0), s?)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, s)| s)
    };
    let s = |v: Option<crate::model::NonEmpty>| v.map(|v| v.into_string());
    let e = |v: Option<crate::model::EnvName>| v.map(|v| v.into_string());
    Some(match mode {
        AuthMode::Oauth => Auth::Oauth,
        AuthMode::ApiKey => match latest(vec![
            ("auth.key-env", e(key_env).map(Secret::Env)),
            ("auth.key-command", s(key_command).map(Secret::Command)),
        ]) {
            Some(from) => Auth::ApiKey { from },
            None => {
                p.at(
                    "auth.mode",
                    Diagnostic::new("auth.mode", "an `api-key` profile needs a key source")
                        .with_hint("set `auth.key-env` or `auth.key-command`"),
                );
                return None;
            }
        },
        AuthMode::AuthToken => match latest(vec![
            ("auth.token", s(token).map(Secret::Literal)),
            ("auth.token-env", e(token_env).map(Secret::Env)),
            ("auth.token-command", s(token_command).map(Secret::Command)),
        ]) {
            Some(from) => Auth::AuthToken { from },
            None => {
                p.at(
                    "auth.mode",
                    Diagnostic::new("auth.mode", "an `auth-token` profile needs a token")
                        .with_hint(
                            "set `auth.token` (e.g. `\"llamacpp\"`), `auth.token-env` or \
                         `auth.token-command`",
                        ),
                );
                return None;
            }
        },
    })
}

fn resolve_backend(raw: RawBackend) -> Option<Backend> {
    let RawBackend {
        url,
        health,
        models,
        check,
        wait,
        switch,
    } = raw;
    let url = url?;
    let switch = switch.and_then(|s| {
        let RawSwitch {
            command,
            url: target,
            method,
            body,
        } = s;
        match (command, target) {
            (Some(c), _) => Some(Switch::Command(c.into_string())),
            (None, Some(t)) => Some(Switch::Request {
                method: method.unwrap_or(HttpMethod::Post),
                url: if t.starts_with('/') {
                    url.join(&t)
                } else {
                    t.into_string()
                },
                body,
            }),
            (None, None) => None,
        }
    });
    let local = url.is_loopback();
    Some(Backend {
        health: health.map_or_else(|| "/health".into(), |h| h.into_string()),
        models: models.map(|m| m.into_string()),
        check: check.unwrap_or(local) || switch.is_some(),
        wait: wait.map_or(if switch.is_some() { 120 } else { 0 }, |w| w.get()),
        switch,
        url,
    })
}

fn resolve_model(raw: RawModel) -> Models {
    let RawModel {
        default,
        opus,
        sonnet,
        haiku,
        context,
    } = raw;
    let default = default.map(|m| m.into_string());
    let tier = |m: Option<crate::model::NonEmpty>| m.map(|m| m.into_string()).or(default.clone());
    Models {
        opus: tier(opus),
        sonnet: tier(sonnet),
        haiku: tier(haiku),
        context: context.map(|c| c.get()),
        default,
    }
}

fn resolve_isolation(
    raw: RawIsolation,
    oauth: bool,
    state_dir: &Path,
    host: &Host,
    p: &mut Problems,
) -> Isolation {
    let RawIsolation {
        level,
        config_dir,
        user,
    } = raw;
    let main = host.main_claude_dir();
    let config_dir = match config_dir {
        Some(d) => absolute(&d, p.loaded.dir_of("isolation.config-dir"), host),
        None if oauth => main.clone(),
        None => state_dir.join("claude"),
    };
    let main_config = config_dir == main;
    if config_dir == Path::new("/") || host.home.starts_with(&config_dir) {
        p.at(
            "isolation.config-dir",
            Diagnostic::new(
                "isolation.config-dir",
                format!("the config dir cannot be `{}`", config_dir.display()),
            )
            .with_hint("name a directory of its own, e.g. `~/.claude-local`"),
        );
    } else if main_config && !oauth {
        p.at(
            "isolation.config-dir",
            Diagnostic::new(
                "isolation.config-dir",
                "only an `oauth` profile may use the normal `~/.claude`",
            )
            .with_hint("remove the key: each profile gets its own config dir by default"),
        );
    }
    Isolation {
        level: level.unwrap_or(Level::Env),
        config_dir,
        main_config,
        user: user.map(|u| u.into_string()),
    }
}

fn resolve_network(raw: RawNetwork) -> Network {
    let RawNetwork { mode, allow } = raw;
    Network {
        mode: mode.unwrap_or(NetworkMode::Open),
        allow: allow.unwrap_or_default(),
    }
}

fn resolve_workspace(raw: RawWorkspace, level: Level, host: &Host, p: &mut Problems) -> Workspace {
    let RawWorkspace {
        path,
        read_only,
        writable,
        protect,
        protect_git,
        trust,
    } = raw;
    let explicit = path.is_some();
    let written = match path {
        Some(w) => absolute(&w, p.loaded.dir_of("workspace.path"), host),
        None => host.cwd.clone(),
    };
    let path = host.realpath(&written);
    judge_workspace(&written, &path, explicit, level, host, p);
    Workspace {
        path,
        read_only: extra_paths(read_only, "workspace.read-only", host, p),
        writable: extra_paths(writable, "workspace.writable", host, p),
        protect: match protect {
            Some(list) => list
                .iter()
                .map(|p| PathBuf::from(p.trim_end_matches('/')))
                .collect(),
            None => crate::policy::DEFAULT_PROTECT
                .iter()
                .filter(|p| protect_git != Some(false) || !crate::policy::GIT_PROTECT.contains(p))
                .map(PathBuf::from)
                .collect(),
        },
        trust: trust.unwrap_or(false),
    }
}

/// ` (it resolves to `REAL`)` when a path's links lead elsewhere than it says.
fn resolves_to(written: &Path, real: &Path) -> String {
    if written == real {
        String::new()
    } else {
        format!(" (it resolves to `{}`)", real.display())
    }
}

/// The workspace judged after resolving its links: a refused one is a problem at
/// `workspace.path`, or, when the current directory made it, at the level that makes a
/// workspace writable (level A's is only the directory Claude Code starts in).
fn judge_workspace(
    written: &Path,
    real: &Path,
    explicit: bool,
    level: Level,
    host: &Host,
    p: &mut Problems,
) {
    // The current directory at level A is not judged: nothing of it is made writable
    // or mounted there, so nothing would come of a refusal (and the launch path spares
    // resolving the dozen paths the judgement compares it with).
    if !explicit && level == Level::Env {
        return;
    }
    let Some(why) = crate::policy::refused_path(written, host) else {
        return;
    };
    let resolved = resolves_to(written, real);
    if explicit {
        let message = format!("the workspace `{}` {why}{resolved}", written.display());
        p.at(
            "workspace.path",
            Diagnostic::new("workspace.path", message)
                .with_hint("point it at one project directory, e.g. `~/src/my-project`"),
        );
    } else {
        // Nothing in a file set the workspace: point at what made it matter.
        let message = format!(
            "the workspace would be the current directory `{}`, which {why}{resolved}: level \
             `{}` makes the workspace writable",
            written.display(),
            level.as_str()
        );
        let d = p.loaded.diagnostic_at(
            "isolation.level",
            Diagnostic::new("workspace.path", message)
                .with_hint("run clp from a project directory, or set `workspace.path`"),
        );
        p.found.push(Diagnostic {
            key: "workspace.path".into(),
            ..d
        });
    }
}

/// `workspace.read-only` or `workspace.writable`: each entry absolute and resolved, and
/// judged by the same rule as the workspace (a read-only view of a credential dir is
/// still a leak).
fn extra_paths(
    list: Option<Vec<String>>,
    key: &str,
    host: &Host,
    p: &mut Problems,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in list.unwrap_or_default() {
        let written = absolute(&entry, p.loaded.dir_of(key), host);
        let real = host.realpath(&written);
        if let Some(why) = crate::policy::refused_path(&written, host) {
            let message = format!(
                "`{}` {why}{}",
                written.display(),
                resolves_to(&written, &real)
            );
            p.at(
                key,
                Diagnostic::new(key, message)
                    .with_hint("name the specific directories Claude Code needs"),
            );
        }
        out.push(real);
    }
    out
}

fn resolve_permissions(raw: RawPermissions) -> Permissions {
    let RawPermissions { allow, ask, deny } = raw;
    Permissions {
        allow: allow.unwrap_or_default(),
        ask: ask.unwrap_or_default(),
        deny: deny.unwrap_or_default(),
    }
}

fn resolve_claude(raw: RawClaude) -> Claude {
    let RawClaude {
        command,
        args,
        version,
        settings,
        share,
    } = raw;
    let mut share = share.unwrap_or_default();
    share.sort();
    share.dedup();
    Claude {
        command: command.map_or_else(|| "claude".into(), |c| c.into_string()),
        args: args.unwrap_or_default(),
        settings: settings.unwrap_or_default(),
        version,
        share,
    }
}

fn resolve_container(raw: RawContainer, claude: &Claude) -> Container {
    let RawContainer { engine, image } = raw;
    Container {
        engine: engine.unwrap_or(Engine::Auto),
        image: image.map_or_else(
            || default_image(claude.version.as_ref()),
            |i| i.into_string(),
        ),
    }
}

/// The image a container profile uses when it names none.
pub fn default_image(version: Option<&VersionSpec>) -> String {
    let tag = version.and_then(|v| v.pinned()).unwrap_or("latest");
    format!("localhost/clp-claude:{tag}")
}

/// Makes a profile path absolute: `~` against the home, relative against the defining
/// file's directory (or the current directory for built-ins and `--set`), then removes
/// `.` and `..` without touching the disk.
pub fn absolute(path: &str, dir: Option<&Path>, host: &Host) -> PathBuf {
    let joined = if path == "~" {
        host.home.clone()
    } else if let Some(rest) = path.strip_prefix("~/") {
        host.home.join(rest)
    } else if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        dir.unwrap_or(&host.cwd).join(path)
    };
    normalize(&joined)
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
