//! The profile model as written in TOML: one raw layer per file, every field optional.
//!
//! These types are the source of `schemas/profile.schema.json`: their doc comments are the
//! descriptions editors show, so each says what the key does, its default and an example.
//! Defaults are never applied here; [`crate::profile::resolve`] applies them in one place.
//!
//! Values that have a type are parsed here, once: the backend URL is a [`BaseUrl`], the
//! required Claude Code version a [`VersionSpec`], network entries [`HostPattern`]s. A
//! profile that deserializes into [`RawProfile`] is valid as far as one file can be; the
//! generated JSON Schema says the same thing, for editors and for located diagnostics.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::net::HostPattern;

/// A Claude Code launch profile (`<name>.toml`).
///
/// Every key is optional in a file; `extends` pulls in the keys of another profile and the
/// file's own keys win. `clp show NAME` prints the resolved values and where each came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "clp profile")]
pub struct RawProfile {
    /// One line saying what the profile is for, shown by `clp list`.
    ///
    /// Example: `description = "GLM 4.7 Flash on the local llama-server, sandboxed"`
    pub description: Option<String>,

    /// Name of a profile whose keys this one inherits.
    ///
    /// Looked up like any profile name (`--profiles-dir`, the user's profile dir, the
    /// built-ins). Keys set here override the parent's; tables merge key by key and lists
    /// replace the parent's list. Cycles are an error. A profile's name is its file's
    /// name without `.toml`: ASCII letters, digits, `_`, `.` and `-`, not starting with
    /// `.` or `-`, at most 64 characters, and not `logs`.
    ///
    /// Example: `extends = "local-glm"`
    pub extends: Option<ProfileName>,

    /// Shell alias that `clp shell-init` defines for `clp use <this profile>`.
    ///
    /// Example: `alias = "claude-local"`
    pub alias: Option<AliasName>,

    /// How Claude Code authenticates.
    pub auth: Option<RawAuth>,

    /// The Anthropic Messages API server Claude Code talks to.
    pub backend: Option<RawBackend>,

    /// Model names sent to the backend.
    pub model: Option<RawModel>,

    /// How strongly Claude Code is separated from the rest of the machine.
    pub isolation: Option<RawIsolation>,

    /// What the sandboxed process may reach on the network.
    pub network: Option<RawNetwork>,

    /// The project directory and the extra paths Claude Code may use.
    pub workspace: Option<RawWorkspace>,

    /// Claude Code permission rules added to the level's defaults.
    pub permissions: Option<RawPermissions>,

    /// Extra environment variables for Claude Code.
    ///
    /// Values are literal strings. Credentials belong in `auth`, not here.
    ///
    /// Example: `env = { DISABLE_AUTOUPDATER = "1" }`
    #[schemars(
        with = "Option<BTreeMap<String, String>>",
        extend("propertyNames" = { "pattern": ENV_NAME_PATTERN })
    )]
    pub env: Option<BTreeMap<EnvName, String>>,

    /// The Claude Code binary, its arguments and extra settings.
    pub claude: Option<RawClaude>,

    /// The container engine and image used at level `container`.
    pub container: Option<RawContainer>,
}

/// How Claude Code authenticates.
///
/// Give exactly one credential source for `api-key` and `auth-token`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAuth {
    /// Authentication mode.
    ///
    /// `oauth`: the normal subscription login, nothing injected. `api-key`: an Anthropic API
    /// key (`x-api-key`), taken from `key-env` or `key-command`. `auth-token`: a bearer token
    /// (`Authorization: Bearer`), as llama-server and most proxies expect. Default: `oauth`.
    pub mode: Option<AuthMode>,

    /// Literal bearer token for `auth-token` mode.
    ///
    /// Only for non-secret placeholders such as llama-server's `llamacpp`; use `token-env`
    /// or `token-command` for real secrets.
    ///
    /// Example: `token = "llamacpp"`
    pub token: Option<NonEmpty>,

    /// Environment variable holding the bearer token (`auth-token` mode).
    ///
    /// Example: `token-env = "MY_PROXY_TOKEN"`
    pub token_env: Option<EnvName>,

    /// Shell command that prints the bearer token (`auth-token` mode); run at launch.
    ///
    /// Example: `token-command = "pass show llm/proxy-token"`
    pub token_command: Option<NonEmpty>,

    /// Environment variable holding the API key (`api-key` mode).
    ///
    /// Example: `key-env = "ANTHROPIC_WORK_KEY"`
    pub key_env: Option<EnvName>,

    /// Shell command that prints the API key (`api-key` mode).
    ///
    /// Rendered as Claude Code's `apiKeyHelper`, so the key never lands in a file.
    ///
    /// Example: `key-command = "pass show anthropic/api-key"`
    pub key_command: Option<NonEmpty>,
}

/// Authentication mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// The normal Claude subscription login; nothing is injected.
    Oauth,
    /// An Anthropic API key sent as `x-api-key`.
    ApiKey,
    /// A bearer token sent as `Authorization: Bearer`.
    AuthToken,
}

/// The Anthropic Messages API server Claude Code talks to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBackend {
    /// Base URL of the server: its root, without `/v1`.
    ///
    /// Becomes `ANTHROPIC_BASE_URL`; Claude Code appends `/v1/messages` itself.
    ///
    /// Example: `url = "http://127.0.0.1:8080"`
    pub url: Option<BaseUrl>,

    /// Path probed before launch; a 200 answer means ready.
    ///
    /// llama-server answers `/health` with 503 while a model loads. Set `check = false` to
    /// skip the probe. Default: `/health`.
    pub health: Option<ServerPath>,

    /// Path listing the served models; when set, a launch warns if the profile's model is
    /// not among them.
    ///
    /// Example: `models = "/v1/models"`
    pub models: Option<ServerPath>,

    /// Probe the backend before launch. Default: `true` for a loopback URL, `false` otherwise.
    pub check: Option<bool>,

    /// Seconds to wait for the backend to be ready (up, health 200, and with `switch`,
    /// serving the profile's model) before giving up.
    ///
    /// Default: `0` (fail at once with a hint), or `120` when `switch` is set.
    pub wait: Option<WaitSecs>,

    /// How to ask the server for the profile's model before launch (a llama-server
    /// behind a model manager, say); clp then waits until the model is listed.
    ///
    /// Give `command`, or `url` (with `method` and `body`).
    ///
    /// Example: `switch = { url = "/models/load", body = '{"model": "glm-flash-q4"}' }`
    pub switch: Option<RawSwitch>,
}

/// A request that makes the backend serve the profile's model.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSwitch {
    /// Shell command to run; it must exit 0.
    ///
    /// Example: `command = "llama-swap-ctl load glm-flash-q4"`
    pub command: Option<NonEmpty>,

    /// URL to request: absolute, or a path on the backend.
    ///
    /// Example: `url = "http://127.0.0.1:8081/switch"`
    pub url: Option<NonEmpty>,

    /// HTTP method. Default: `POST`.
    pub method: Option<HttpMethod>,

    /// Request body, sent as `application/json` when it parses as JSON.
    pub body: Option<String>,
}

/// HTTP method of a switch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
}

/// Model names sent to the backend.
///
/// With llama-server these must match the `--alias` the model was started with.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawModel {
    /// The main model (`ANTHROPIC_MODEL`).
    ///
    /// Example: `default = "glm-flash-q4"`
    pub default: Option<NonEmpty>,

    /// Model used where Claude Code asks for Opus (`ANTHROPIC_DEFAULT_OPUS_MODEL`).
    ///
    /// Default: `model.default`.
    pub opus: Option<NonEmpty>,

    /// Model used where Claude Code asks for Sonnet (`ANTHROPIC_DEFAULT_SONNET_MODEL`).
    ///
    /// Default: `model.default`.
    pub sonnet: Option<NonEmpty>,

    /// Model used for small, fast tasks (`ANTHROPIC_DEFAULT_HAIKU_MODEL`).
    ///
    /// Default: `model.default`.
    pub haiku: Option<NonEmpty>,

    /// Context window of the served model, in tokens (`CLAUDE_CODE_MAX_CONTEXT_TOKENS`).
    ///
    /// Unset: clp asks the server at launch (llama-server's `n_ctx`, from `/v1/models` or
    /// `/props`). Set: a warning when the server has less. Either way clp also sets
    /// `CLAUDE_CODE_MAX_OUTPUT_TOKENS` (a sixteenth of the window, 2,048 to 16,000, unless
    /// `env` sets it), so that Claude Code compacts before the server refuses a request.
    ///
    /// Example: `context = 32768`
    pub context: Option<ContextTokens>,
}

/// How strongly Claude Code is separated from the rest of the machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawIsolation {
    /// Isolation level: `env` (A), `sandbox` (B) or `container` (C).
    ///
    /// `env`: a separate environment and config dir, no OS boundary. `sandbox`: the whole
    /// Claude Code process inside bubblewrap, plus Claude Code's own Bash sandbox.
    /// `container`: Claude Code inside Docker or Podman. Default: `env`.
    pub level: Option<Level>,

    /// Claude Code config dir (`CLAUDE_CONFIG_DIR`) for this profile.
    ///
    /// `~` and relative paths resolve against your home and this file's directory.
    /// Default: `~/.claude` for `oauth` profiles (the normal install), otherwise
    /// `<state dir>/<profile>/claude`.
    pub config_dir: Option<NonEmpty>,

    /// User the sandbox runs as when clp itself runs as root (levels `sandbox` and
    /// `container`).
    ///
    /// A user name or a numeric uid. Default: the owner of the workspace, if not root.
    pub user: Option<NonEmpty>,
}

/// Isolation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// A: environment and config dir only.
    #[serde(alias = "A")]
    Env,
    /// B: bubblewrap around the whole Claude Code process.
    #[serde(alias = "B")]
    Sandbox,
    /// C: a Docker or Podman container.
    #[serde(alias = "C")]
    Container,
}

impl Level {
    /// The TOML name of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Env => "env",
            Level::Sandbox => "sandbox",
            Level::Container => "container",
        }
    }

    /// The letter of the level (A, B, C).
    pub fn letter(self) -> char {
        match self {
            Level::Env => 'A',
            Level::Sandbox => 'B',
            Level::Container => 'C',
        }
    }
}

// By hand because the schema must also accept the serde aliases A/B/C, which schemars
// does not emit.
impl JsonSchema for Level {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Level".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Isolation level: `env` (or `A`), `sandbox` (or `B`), `container` (or `C`).",
            "type": "string",
            "enum": ["env", "sandbox", "container", "A", "B", "C"]
        })
    }
}

/// What the sandboxed process may reach on the network.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNetwork {
    /// Network mode: `open`, `allowlist` or `offline`.
    ///
    /// The backend's host and port are always reachable. Default: `open`.
    pub mode: Option<NetworkMode>,

    /// Hosts reachable in `allowlist` mode: `host`, `host:port` or `*.domain`.
    ///
    /// Also becomes Claude Code's `sandbox.network.allowedDomains`.
    ///
    /// Example: `allow = ["github.com", "*.npmjs.org", "pypi.org:443"]`
    pub allow: Option<Vec<HostPattern>>,
}

/// Network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// Everything reachable.
    Open,
    /// Only the backend and `network.allow`.
    Allowlist,
    /// Only the backend.
    Offline,
}

/// The project directory and the extra paths Claude Code may use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawWorkspace {
    /// The project directory, writable inside the boundary and Claude Code's working dir.
    ///
    /// Judged after resolving symbolic links: never `/`, your home or an ancestor of it,
    /// another account's home, the normal install, a credential directory, clp's own
    /// dirs or a system tree (the list is in `docs/isolation.md`). Default: the directory
    /// clp is started in.
    ///
    /// Example: `path = "~/src/my-project"`
    pub path: Option<NonEmpty>,

    /// Extra paths visible read-only inside the boundary.
    ///
    /// Example: `read-only = ["~/src/shared-lib"]`
    pub read_only: Option<Vec<String>>,

    /// Extra paths writable inside the boundary.
    ///
    /// Example: `writable = ["~/.cache/pip"]`
    pub writable: Option<Vec<String>>,

    /// Workspace paths that tools outside the boundary execute later (git, your normal
    /// `claude`, the editor, direnv): read-only inside levels B and C, their parent
    /// directories pinned so they cannot be renamed away, and, when missing at launch,
    /// held aside if the session creates them.
    ///
    /// Relative to the workspace. Default: `.git`, `.git/hooks`, `.git/config`,
    /// `.git/config.worktree`, `.git/commondir` and `HEAD` (either would point git at a
    /// config the session wrote), the submodules' `.git/modules/*/{config,hooks,commondir,
    /// config.worktree}` and the linked worktrees' `.git/worktrees/*/{commondir,
    /// config.worktree}`, `.claude/settings.json`,
    /// `.claude/settings.local.json`, `.mcp.json`, `.vscode`, `.envrc`. Give a list to
    /// replace it (add to the defaults by repeating them); `[]` opts out.
    ///
    /// Example: `protect = [".git", ".git/hooks", ".git/config", ".envrc", "Makefile"]`
    pub protect: Option<Vec<ProtectPath>>,

    /// Deprecated: use `protect`. `false` removes the git entries from the default
    /// `protect` list.
    pub protect_git: Option<bool>,

    /// Mark the workspace as trusted in the profile's own Claude config, skipping the
    /// trust dialog. Default: `false` (the trust decision stays yours).
    pub trust: Option<bool>,
}

/// Claude Code permission rules added to the level's defaults.
///
/// Rules use Claude Code's syntax: `Tool` or `Tool(specifier)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPermissions {
    /// Rules allowed without asking.
    ///
    /// Example: `allow = ["Read", "Edit(src/**)"]`
    pub allow: Option<Vec<String>>,

    /// Rules that always ask. Local profiles always ask for `Bash`.
    pub ask: Option<Vec<String>>,

    /// Rules always denied. Local profiles deny `sudo` and `su`.
    ///
    /// Example: `deny = ["WebFetch"]`
    pub deny: Option<Vec<String>>,
}

/// The Claude Code binary, its arguments and extra settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawClaude {
    /// The Claude Code executable: a name looked up in `PATH`, or a path.
    ///
    /// Default: `claude`.
    pub command: Option<NonEmpty>,

    /// Arguments always passed before the ones given on the command line.
    ///
    /// Example: `args = ["--verbose"]`
    pub args: Option<Vec<String>>,

    /// Required Claude Code version, as a semver requirement; `clp doctor` checks it and
    /// the container image installs it.
    ///
    /// Example: `version = ">=2.1.300"`
    pub version: Option<VersionSpec>,

    /// Extra keys for the rendered `settings.json`, checked against Claude Code's settings
    /// schema. Keys clp manages (the backend `env` pins, the sandbox) still win.
    ///
    /// Example: `settings = { cleanupPeriodDays = 7 }`
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,

    /// Parts of the main install's `~/.claude` this profile sees in its own config dir,
    /// without a copy and without write access: `CLAUDE.md` (your instructions),
    /// `agents`, `skills`, `commands`, `output-styles`. Nothing else can be shared:
    /// credentials, `settings.json`, `.claude.json`, projects and history never are.
    /// Levels B and C mount them read-only; level A links them (read-only is then not
    /// enforced: Claude Code runs as you). What the profile's config dir has of its own
    /// wins, and a part that is a symbolic link is not shared.
    ///
    /// Default: nothing. Example: `share = ["CLAUDE.md", "agents", "skills"]`
    pub share: Option<Vec<Shared>>,
}

/// A part of the main install's `~/.claude` that a profile can see read-only.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Shared {
    /// `CLAUDE.md`: your own instructions.
    #[serde(rename = "CLAUDE.md")]
    ClaudeMd,
    /// `agents/`: your subagents.
    #[serde(rename = "agents")]
    Agents,
    /// `skills/`: your skills.
    #[serde(rename = "skills")]
    Skills,
    /// `commands/`: your slash commands.
    #[serde(rename = "commands")]
    Commands,
    /// `output-styles/`: your output styles.
    #[serde(rename = "output-styles")]
    OutputStyles,
}

impl Shared {
    /// Its name in `~/.claude`.
    pub fn name(self) -> &'static str {
        match self {
            Shared::ClaudeMd => "CLAUDE.md",
            Shared::Agents => "agents",
            Shared::Skills => "skills",
            Shared::Commands => "commands",
            Shared::OutputStyles => "output-styles",
        }
    }

    /// Whether it is a file (the others are directories).
    pub fn is_file(self) -> bool {
        self == Shared::ClaudeMd
    }
}

/// The container engine and image used at level `container`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawContainer {
    /// Container engine: `docker`, `podman` or `auto` (the first one found, Podman first).
    ///
    /// Default: `auto`.
    pub engine: Option<Engine>,

    /// Image with Claude Code installed; `clp image NAME` prints a Containerfile for it.
    ///
    /// Default: `localhost/clp-claude:<claude.version or latest>`.
    pub image: Option<NonEmpty>,
}

/// Container engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// The first engine found on `PATH`, Podman first.
    Auto,
    /// Docker.
    Docker,
    /// Podman.
    Podman,
}

/// A backend base URL: `http` or `https`, the server root (no `/v1`), no query, no
/// fragment and no credentials (they would be printed by `clp show` and sent in clear).
///
/// Kept as written, without a trailing slash, with its parsed form beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    text: String,
    url: url::Url,
}

/// Why a string is not a [`BaseUrl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    /// Not a URL at all.
    Syntax(String),
    /// Not http or https; `hint` says what to write instead.
    Scheme {
        /// The scheme found.
        scheme: String,
        /// A corrected spelling.
        hint: String,
    },
    /// Ends in `/v1`; `root` is the server root to use instead.
    V1 {
        /// The server root.
        root: String,
    },
    /// Has a query or a fragment.
    Query,
    /// Carries a user name or password.
    Credentials,
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlProblem::Syntax(e) => write!(f, "not a URL: {e}"),
            UrlProblem::Scheme { scheme, .. } => write!(f, "unsupported scheme `{scheme}`"),
            UrlProblem::V1 { .. } => f.write_str("the base URL ends in `/v1`"),
            UrlProblem::Query => f.write_str("the base URL cannot have a query or fragment"),
            UrlProblem::Credentials => {
                f.write_str("the base URL carries credentials (`user:password@`)")
            }
        }
    }
}

impl UrlProblem {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            UrlProblem::Syntax(_) => Some("write e.g. `http://127.0.0.1:8080`".into()),
            UrlProblem::Scheme { hint, .. } => Some(hint.clone()),
            UrlProblem::V1 { root } => Some(format!(
                "use the server root `{root}`: Claude Code appends `/v1/messages` itself"
            )),
            UrlProblem::Query => None,
            UrlProblem::Credentials => Some(
                "remove them from the URL; put a token in `auth.token-env` or \
                 `auth.token-command`"
                    .into(),
            ),
        }
    }
}

impl BaseUrl {
    /// Parses and checks a base URL.
    pub fn parse(text: &str) -> Result<BaseUrl, UrlProblem> {
        let parsed = url::Url::parse(text).map_err(|e| UrlProblem::Syntax(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            let hint = if parsed.cannot_be_a_base() && !text.contains("://") {
                format!("add the scheme: `http://{text}`")
            } else {
                "use `http://` or `https://`".to_owned()
            };
            return Err(UrlProblem::Scheme {
                scheme: parsed.scheme().to_owned(),
                hint,
            });
        }
        let path = parsed.path().trim_end_matches('/');
        if path.ends_with("/v1") || path.contains("/v1/") {
            let before = &path[..path.find("/v1").unwrap_or(path.len())];
            let root = format!("{}{before}", parsed.origin().ascii_serialization());
            return Err(UrlProblem::V1 { root });
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(UrlProblem::Query);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlProblem::Credentials);
        }
        Ok(BaseUrl {
            text: text.trim_end_matches('/').to_owned(),
            url: parsed,
        })
    }

    /// The URL as written, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host name or address, without brackets.
    pub fn host(&self) -> String {
        match self.url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => String::new(),
        }
    }

    /// The port, or the scheme's default.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// Whether the host is this machine's loopback (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        crate::net::is_loopback_host(&self.host())
    }

    /// `self` followed by `path` (which starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.text)
    }
}

/// A required Claude Code version: a semver requirement, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSpec {
    text: String,
    req: semver::VersionReq,
}

impl VersionSpec {
    /// Parses a requirement such as `>=2.1.300` or `=2.1.330`.
    pub fn parse(text: &str) -> Result<VersionSpec, semver::Error> {
        Ok(VersionSpec {
            req: semver::VersionReq::parse(text)?,
            text: text.to_owned(),
        })
    }

    /// Whether `version` (as Claude Code prints it) satisfies the requirement.
    pub fn matches(&self, version: &str) -> bool {
        semver::Version::parse(version).is_ok_and(|v| self.req.matches(&v))
    }

    /// The exact version when the requirement pins one (`=2.1.330`).
    pub fn pinned(&self) -> Option<&str> {
        let v = self.text.strip_prefix('=')?.trim();
        semver::Version::parse(v).is_ok().then_some(v)
    }

    /// The requirement as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl HttpMethod {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
        }
    }
}

/// The pattern of an environment variable name, shared by [`EnvName`] and the schema of
/// the `env` table's keys.
pub const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// Defines a string newtype whose `Deserialize` enforces exactly what its JSON Schema
/// says, so that a profile that deserializes is one the schema accepts: the launch path
/// checks profiles with serde alone, `clp check` with the schema, and both agree.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $schema:tt, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks `s`.
            pub fn new(s: impl Into<String>) -> Option<$name> {
                let s = s.into();
                let valid: fn(&str) -> bool = $valid;
                valid(&s).then_some($name(s))
            }

            /// The string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The string, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).ok_or_else(|| {
                    serde::de::Error::custom(concat!("not a valid ", stringify!($name)))
                })
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    };
}

checked_string!(
    /// A string that is not empty.
    NonEmpty,
    { "type": "string", "minLength": 1 },
    |s| !s.is_empty()
);

checked_string!(
    /// An environment variable name: letters, digits and `_`, not starting with a digit.
    EnvName,
    { "type": "string", "pattern": ENV_NAME_PATTERN },
    |s| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }
);

checked_string!(
    /// A path inside the workspace: relative, without `..`.
    ProtectPath,
    { "type": "string", "minLength": 1 },
    |s| valid_protect_path(s)
);

/// Whether `s` names a path inside the workspace: relative, not empty, no `..` or empty
/// component, no NUL.
pub fn valid_protect_path(s: &str) -> bool {
    let s = s.trim_end_matches('/');
    !s.is_empty()
        && !s.starts_with('/')
        && !s.contains('\0')
        && s.split('/').all(|c| !c.is_empty() && c != "..")
}

checked_string!(
    /// A path on the backend server, starting with `/`.
    ServerPath,
    { "type": "string", "pattern": "^/" },
    |s| s.starts_with('/')
);

checked_string!(
    /// A shell alias name: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`.
    AliasName,
    { "type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]*$" },
    |s| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    }
);

/// The longest profile name: it names a directory, a log file and a container.
pub const PROFILE_NAME_MAX: usize = 64;

/// Names a profile cannot have, because clp keeps something else beside the profiles'
/// own dirs in its state dir under that name (`<state>/logs`: the network logs, which a
/// session of a profile named `logs` could otherwise write).
pub const RESERVED_PROFILE_NAMES: &[&str] = &["logs"];

/// Why `name` cannot name a profile, or `None` when it can. The one rule for every
/// profile name: a file's stem, `extends`, `clp init NAME`.
///
/// A name becomes a file name (`<name>.toml`), a directory in clp's state and runtime
/// dirs, a log file, part of a container name and a word in shell aliases: so ASCII
/// letters, digits, `_`, `.` and `-`, not starting with `.` or `-` (never `..`, never an
/// option), at most [`PROFILE_NAME_MAX`] characters, and not one of
/// [`RESERVED_PROFILE_NAMES`].
pub fn profile_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if name.is_empty() {
        Some("a profile name cannot be empty".into())
    } else if !first_ok || !rest_ok {
        Some(format!(
            "`{}` is not a profile name: use letters, digits, `_`, `.` and `-`, \
             starting with a letter, a digit or `_`",
            name.escape_debug()
        ))
    } else if name.len() > PROFILE_NAME_MAX {
        Some(format!(
            "a profile name has at most {PROFILE_NAME_MAX} characters, this one {}",
            name.len()
        ))
    } else if RESERVED_PROFILE_NAMES.contains(&name) {
        Some(format!(
            "`{name}` is reserved: clp keeps its own files under that name in its state dir"
        ))
    } else {
        None
    }
}

/// The pattern of a profile name, as the schema says it (with `maxLength` and the
/// reserved names beside it).
pub const PROFILE_NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_.-]*$";

checked_string!(
    /// A profile name (see [`profile_name_problem`]).
    ProfileName,
    {
        "type": "string",
        "pattern": PROFILE_NAME_PATTERN,
        "maxLength": PROFILE_NAME_MAX,
        "not": { "enum": RESERVED_PROFILE_NAMES }
    },
    |s| profile_name_problem(s).is_none()
);

/// Defines a bounded integer newtype, enforced by `Deserialize` and said by its schema.
macro_rules! bounded_int {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(u32);

        impl $name {
            /// Checks `n`.
            pub fn new(n: u32) -> Option<$name> {
                ($min..=$max).contains(&n).then_some($name(n))
            }

            /// The number.
            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let n = u32::deserialize(d)?;
                $name::new(n).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "must be between {} and {}",
                        $min, $max
                    ))
                })
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let mut schema = schemars::json_schema!({
                    "type": "integer",
                    "format": "uint32",
                    "minimum": $min,
                });
                if $max < u32::MAX {
                    schema.insert("maximum".into(), $max.into());
                }
                schema
            }
        }
    };
}

bounded_int!(
    /// Seconds to wait for a backend: at most an hour.
    WaitSecs,
    0u32,
    3600u32
);

bounded_int!(
    /// A context window in tokens.
    ContextTokens,
    1024u32,
    10_000_000u32
);

/// Implements `Display`, `Serialize`, `Deserialize` (through the type's `parse`) and a
/// string JSON Schema for a value written as a string and kept as written.
macro_rules! text_value {
    ($name:ty, $min_length:expr) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$name>::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let mut schema = schemars::json_schema!({ "type": "string" });
                if let Some(n) = $min_length {
                    schema.insert("minLength".into(), serde_json::json!(n));
                }
                schema
            }
        }
    };
}

text_value!(BaseUrl, Some(1));
text_value!(VersionSpec, None::<u32>);
text_value!(HostPattern, None::<u32>);
