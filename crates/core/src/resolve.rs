//! The resolved profile: every default applied, every path absolute, cross-key rules checked.
//!
//! [`resolve`] is the one place defaults live. Its output has no unresolved options: an
//! `Option` left in [`Profile`] means "absent" (no backend URL, no alias), never "use the
//! default later".

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::host::Host;
use crate::load::Loaded;
use crate::model::{
    AuthMode, Engine, HttpMethod, Level, NetworkMode, RawAuth, RawBackend, RawClaude, RawContainer,
    RawIsolation, RawModel, RawNetwork, RawPermissions, RawProfile, RawSwitch, RawWorkspace,
};

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
    pub url: String,
    /// Readiness path.
    pub health: String,
    /// Model list path, when the profile wants the model checked.
    pub models: Option<String>,
    /// Whether to probe before launch.
    pub check: bool,
    /// Seconds to wait for a loading backend.
    pub wait: u32,
    /// Whether the URL's host is on this machine's loopback.
    pub local: bool,
    /// `host:port` of the URL, for network rules.
    pub host_port: String,
    /// How to make the backend serve the profile's model.
    pub switch: Option<Switch>,
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
        method: String,
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
    pub allow: Vec<String>,
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
    /// Keep `.git/hooks` and `.git/config` read-only.
    pub protect_git: bool,
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
    pub version: Option<String>,
    /// Extra settings keys.
    pub settings: serde_json::Map<String, serde_json::Value>,
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
    let mut problems = Vec::new();
    let name = loaded.name.clone();
    let state_dir = host.state_dir.join(&name);

    let auth = resolve_auth(auth.unwrap_or_default(), loaded, &mut problems);
    let oauth = matches!(auth, Some(Auth::Oauth));
    let backend = resolve_backend(backend.unwrap_or_default());
    if matches!(auth, Some(Auth::Oauth)) && backend.is_some() {
        problems.push(
            loaded.diagnostic_at(
                "backend.url",
                Diagnostic::new(
                    "backend.url",
                    "an `oauth` profile sends your subscription login, not to a custom backend",
                )
                .with_hint("set `auth.mode = \"auth-token\"` (llama-server takes any token)"),
            ),
        );
    }

    let RawModel {
        default,
        opus,
        sonnet,
        haiku,
        context,
    } = model.unwrap_or_default();
    let model = Models {
        opus: opus.or_else(|| default.clone()),
        sonnet: sonnet.or_else(|| default.clone()),
        haiku: haiku.or_else(|| default.clone()),
        default,
        context,
    };

    let RawIsolation {
        level,
        config_dir,
        user,
    } = isolation.unwrap_or_default();
    let level = level.unwrap_or(Level::Env);
    let main = host.main_claude_dir();
    let config_dir = match config_dir {
        Some(p) => absolute(&p, loaded.dir_of("isolation.config-dir"), host),
        None if oauth => main.clone(),
        None => state_dir.join("claude"),
    };
    let main_config = config_dir == main;
    if config_dir == Path::new("/") || host.home.starts_with(&config_dir) {
        problems.push(
            loaded.diagnostic_at(
                "isolation.config-dir",
                Diagnostic::new(
                    "isolation.config-dir",
                    format!("the config dir cannot be `{}`", config_dir.display()),
                )
                .with_hint("name a directory of its own, e.g. `~/.claude-local`"),
            ),
        );
    } else if main_config && !oauth {
        problems.push(
            loaded.diagnostic_at(
                "isolation.config-dir",
                Diagnostic::new(
                    "isolation.config-dir",
                    "only an `oauth` profile may use the normal `~/.claude`",
                )
                .with_hint("remove the key: each profile gets its own config dir by default"),
            ),
        );
    }

    let RawNetwork { mode, allow } = network.unwrap_or_default();
    let network = Network {
        mode: mode.unwrap_or(NetworkMode::Open),
        allow: allow.unwrap_or_default(),
    };

    let RawWorkspace {
        path,
        read_only,
        writable,
        protect_git,
        trust,
    } = workspace.unwrap_or_default();
    let explicit_workspace = path.is_some();
    let workspace_path = match path {
        Some(p) => absolute(&p, loaded.dir_of("workspace.path"), host),
        None => host.cwd.clone(),
    };
    if workspace_path == Path::new("/") || workspace_path == host.home {
        let whole = if workspace_path == Path::new("/") {
            "the whole disk (`/`)".to_owned()
        } else {
            format!("your whole home (`{}`)", host.home.display())
        };
        if explicit_workspace {
            problems.push(
                loaded.diagnostic_at(
                    "workspace.path",
                    Diagnostic::new("workspace.path", format!("the workspace cannot be {whole}"))
                        .with_hint("point it at one project directory"),
                ),
            );
        } else if level != Level::Env {
            problems.push(Diagnostic {
                key: "workspace.path".into(),
                // Nothing in a file set the workspace: point at what made it matter.
                ..loaded.diagnostic_at(
                    "isolation.level",
                    Diagnostic::new(
                        "workspace.path",
                        format!(
                        "the workspace would be {whole}: level `{}` makes the workspace writable",
                        level.as_str()
                    ),
                    )
                    .with_hint("run clp from a project directory, or set `workspace.path`"),
                )
            });
        }
    }
    let paths = |list: Option<Vec<String>>, key: &str| -> Vec<PathBuf> {
        list.unwrap_or_default()
            .iter()
            .map(|p| absolute(p, loaded.dir_of(key), host))
            .collect()
    };
    let read_only = paths(read_only, "workspace.read-only");
    let writable = paths(writable, "workspace.writable");
    for (key, list) in [
        ("workspace.read-only", &read_only),
        ("workspace.writable", &writable),
    ] {
        for p in list {
            if let Some(why) = exposes(p, host, oauth) {
                problems.push(
                    loaded.diagnostic_at(
                        key,
                        Diagnostic::new(key, format!("`{}` {why}", p.display()))
                            .with_hint("name the specific directories Claude Code needs"),
                    ),
                );
            }
        }
    }
    let workspace = Workspace {
        path: workspace_path,
        read_only,
        writable,
        protect_git: protect_git.unwrap_or(true),
        trust: trust.unwrap_or(false),
    };

    let RawPermissions { allow, ask, deny } = permissions.unwrap_or_default();
    let permissions = Permissions {
        allow: allow.unwrap_or_default(),
        ask: ask.unwrap_or_default(),
        deny: deny.unwrap_or_default(),
    };

    let RawClaude {
        command,
        args,
        version,
        settings,
    } = claude.unwrap_or_default();
    let claude = Claude {
        command: command.unwrap_or_else(|| "claude".into()),
        args: args.unwrap_or_default(),
        settings: settings.unwrap_or_default(),
        version,
    };

    let RawContainer { engine, image } = container.unwrap_or_default();
    let container = Container {
        engine: engine.unwrap_or(Engine::Auto),
        image: image.unwrap_or_else(|| default_image(claude.version.as_deref())),
    };

    let Some(auth) = auth.filter(|_| problems.is_empty()) else {
        let mut d = Diagnostics(problems);
        d.sort();
        return Err(d);
    };
    Ok(Profile {
        description: description.unwrap_or_default(),
        alias,
        auth,
        backend,
        model,
        isolation: Isolation {
            level,
            config_dir,
            main_config,
            user,
        },
        network,
        workspace,
        permissions,
        env: env.unwrap_or_default(),
        claude,
        container,
        state_dir,
        name,
    })
}

/// Why an extra path would open the boundary too wide, if it would.
fn exposes(path: &Path, host: &Host, oauth: bool) -> Option<&'static str> {
    if path == Path::new("/") || host.home.starts_with(path) {
        return Some("would expose your whole home or more");
    }
    let main = host.main_claude_dir();
    if !oauth && (path.starts_with(&main) || path == host.home.join(".claude.json")) {
        return Some("is the normal install's config");
    }
    for secret in crate::sandbox::SECRET_HOME_PATHS {
        if path.starts_with(host.home.join(secret)) {
            return Some("holds credentials");
        }
    }
    None
}

fn resolve_auth(raw: RawAuth, loaded: &Loaded, problems: &mut Vec<Diagnostic>) -> Option<Auth> {
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
        for (key, set) in [
            ("auth.token", token.is_some()),
            ("auth.token-env", token_env.is_some()),
            ("auth.token-command", token_command.is_some()),
            ("auth.key-env", key_env.is_some()),
            ("auth.key-command", key_command.is_some()),
        ] {
            if set {
                problems.push(
                    loaded.diagnostic_at(
                        key,
                        Diagnostic::new(key, format!("`{key}` has no effect with mode `oauth`"))
                            .with_hint("set `auth.mode` to `auth-token` or `api-key`"),
                    ),
                );
            }
        }
    }
    // Sources set in different layers of an `extends` chain: the most specific layer's
    // wins (a child's `token-env` replaces its parent's literal `token`).
    let latest = |options: Vec<(&str, Option<Secret>)>| -> Option<Secret> {
        options
            .into_iter()
            .filter_map(|(key, s)| Some((loaded.rank(key).unwrap_or(0), s?)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, s)| s)
    };
    Some(match mode {
        AuthMode::Oauth => Auth::Oauth,
        AuthMode::ApiKey => match latest(vec![
            ("auth.key-env", key_env.map(Secret::Env)),
            ("auth.key-command", key_command.map(Secret::Command)),
        ]) {
            Some(from) => Auth::ApiKey { from },
            None => {
                problems.push(
                    loaded.diagnostic_at(
                        "auth.mode",
                        Diagnostic::new("auth.mode", "an `api-key` profile needs a key source")
                            .with_hint("set `auth.key-env` or `auth.key-command`"),
                    ),
                );
                return None;
            }
        },
        AuthMode::AuthToken => match latest(vec![
            ("auth.token", token.map(Secret::Literal)),
            ("auth.token-env", token_env.map(Secret::Env)),
            ("auth.token-command", token_command.map(Secret::Command)),
        ]) {
            Some(from) => Auth::AuthToken { from },
            None => {
                problems.push(
                    loaded.diagnostic_at(
                        "auth.mode",
                        Diagnostic::new("auth.mode", "an `auth-token` profile needs a token")
                            .with_hint(
                                "set `auth.token` (e.g. `\"llamacpp\"`), `auth.token-env` or \
                                 `auth.token-command`",
                            ),
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
    let url = url?.trim_end_matches('/').to_owned();
    let switch = switch.and_then(|s| {
        let RawSwitch {
            command,
            url: target,
            method,
            body,
        } = s;
        match (command, target) {
            (Some(c), _) => Some(Switch::Command(c)),
            (None, Some(t)) => Some(Switch::Request {
                method: match method.unwrap_or(HttpMethod::Post) {
                    HttpMethod::Get => "GET",
                    HttpMethod::Post => "POST",
                    HttpMethod::Put => "PUT",
                }
                .into(),
                url: if t.starts_with('/') {
                    format!("{url}{t}")
                } else {
                    t
                },
                body,
            }),
            (None, None) => None,
        }
    });
    let parsed = url::Url::parse(&url).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or_default()
        .to_owned();
    let local = is_loopback(&host);
    let port = parsed
        .as_ref()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(80);
    Some(Backend {
        health: health.unwrap_or_else(|| "/health".into()),
        models,
        check: check.unwrap_or(local) || switch.is_some(),
        wait: wait.unwrap_or(if switch.is_some() { 120 } else { 0 }),
        switch,
        local,
        host_port: format!("{host}:{port}"),
        url,
    })
}

/// Whether a URL host names this machine's loopback.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The image a container profile uses when it names none.
pub fn default_image(version: Option<&str>) -> String {
    let tag = version
        .and_then(|v| v.strip_prefix('='))
        .map(str::trim)
        .filter(|v| semver::Version::parse(v).is_ok())
        .unwrap_or("latest");
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
