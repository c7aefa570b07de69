//! The profile model as written in TOML: one raw layer per file, every field optional.
//!
//! These types are the source of `schemas/profile.schema.json`: their doc comments are the
//! descriptions editors show, so each says what the key does, its default and an example.
//! Defaults are never applied here; [`crate::resolve()`] applies them in one place.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// replace the parent's list. Cycles are an error.
    ///
    /// Example: `extends = "local-glm"`
    #[schemars(length(min = 1))]
    pub extends: Option<String>,

    /// Shell alias that `clp shell-init` defines for `clp use <this profile>`.
    ///
    /// Example: `alias = "claude-local"`
    #[schemars(pattern(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"))]
    pub alias: Option<String>,

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
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }))]
    pub env: Option<BTreeMap<String, String>>,

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
    #[schemars(length(min = 1))]
    pub token: Option<String>,

    /// Environment variable holding the bearer token (`auth-token` mode).
    ///
    /// Example: `token-env = "MY_PROXY_TOKEN"`
    #[schemars(pattern(r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub token_env: Option<String>,

    /// Shell command that prints the bearer token (`auth-token` mode); run at launch.
    ///
    /// Example: `token-command = "pass show llm/proxy-token"`
    #[schemars(length(min = 1))]
    pub token_command: Option<String>,

    /// Environment variable holding the API key (`api-key` mode).
    ///
    /// Example: `key-env = "ANTHROPIC_WORK_KEY"`
    #[schemars(pattern(r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub key_env: Option<String>,

    /// Shell command that prints the API key (`api-key` mode).
    ///
    /// Rendered as Claude Code's `apiKeyHelper`, so the key never lands in a file.
    ///
    /// Example: `key-command = "pass show anthropic/api-key"`
    #[schemars(length(min = 1))]
    pub key_command: Option<String>,
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
    #[schemars(length(min = 1))]
    pub url: Option<String>,

    /// Path probed before launch; a 200 answer means ready.
    ///
    /// llama-server answers `/health` with 503 while a model loads. Set `check = false` to
    /// skip the probe. Default: `/health`.
    #[schemars(pattern(r"^/"))]
    pub health: Option<String>,

    /// Path listing the served models; when set, a launch warns if the profile's model is
    /// not among them.
    ///
    /// Example: `models = "/v1/models"`
    #[schemars(pattern(r"^/"))]
    pub models: Option<String>,

    /// Probe the backend before launch. Default: `true` for a loopback URL, `false` otherwise.
    pub check: Option<bool>,

    /// Seconds to wait for the backend to be ready (up, health 200, and with `switch`,
    /// serving the profile's model) before giving up.
    ///
    /// Default: `0` (fail at once with a hint), or `120` when `switch` is set.
    #[schemars(range(max = 3600))]
    pub wait: Option<u32>,

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
    #[schemars(length(min = 1))]
    pub command: Option<String>,

    /// URL to request: absolute, or a path on the backend.
    ///
    /// Example: `url = "http://127.0.0.1:8081/switch"`
    #[schemars(length(min = 1))]
    pub url: Option<String>,

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
    #[schemars(length(min = 1))]
    pub default: Option<String>,

    /// Model used where Claude Code asks for Opus (`ANTHROPIC_DEFAULT_OPUS_MODEL`).
    ///
    /// Default: `model.default`.
    #[schemars(length(min = 1))]
    pub opus: Option<String>,

    /// Model used where Claude Code asks for Sonnet (`ANTHROPIC_DEFAULT_SONNET_MODEL`).
    ///
    /// Default: `model.default`.
    #[schemars(length(min = 1))]
    pub sonnet: Option<String>,

    /// Model used for small, fast tasks (`ANTHROPIC_DEFAULT_HAIKU_MODEL`).
    ///
    /// Default: `model.default`.
    #[schemars(length(min = 1))]
    pub haiku: Option<String>,

    /// Context window of the served model, in tokens (`CLAUDE_CODE_MAX_CONTEXT_TOKENS`).
    ///
    /// Set it to llama-server's `-c`; Claude Code then compacts before the server refuses.
    ///
    /// Example: `context = 32768`
    #[schemars(range(min = 1024, max = 10_000_000))]
    pub context: Option<u32>,
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
    #[schemars(length(min = 1))]
    pub config_dir: Option<String>,

    /// User the sandbox runs as when clp itself runs as root (levels `sandbox` and
    /// `container`).
    ///
    /// A user name or a numeric uid. Default: the owner of the workspace, if not root.
    #[schemars(length(min = 1))]
    pub user: Option<String>,
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
    pub allow: Option<Vec<String>>,
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
    /// Neither `/` nor your whole home. Default: the directory clp is started in.
    ///
    /// Example: `path = "~/src/my-project"`
    #[schemars(length(min = 1))]
    pub path: Option<String>,

    /// Extra paths visible read-only inside the boundary.
    ///
    /// Example: `read-only = ["~/src/shared-lib"]`
    pub read_only: Option<Vec<String>>,

    /// Extra paths writable inside the boundary.
    ///
    /// Example: `writable = ["~/.cache/pip"]`
    pub writable: Option<Vec<String>>,

    /// Keep `.git/hooks` and `.git/config` read-only inside the boundary, so nothing the
    /// model writes runs later outside it. Default: `true`.
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
    #[schemars(length(min = 1))]
    pub command: Option<String>,

    /// Arguments always passed before the ones given on the command line.
    ///
    /// Example: `args = ["--verbose"]`
    pub args: Option<Vec<String>>,

    /// Required Claude Code version, as a semver requirement; `clp doctor` checks it and
    /// the container image installs it.
    ///
    /// Example: `version = ">=2.1.300"`
    pub version: Option<String>,

    /// Extra keys for the rendered `settings.json`, checked against Claude Code's settings
    /// schema. Keys clp manages (the backend `env` pins, the sandbox) still win.
    ///
    /// Example: `settings = { cleanupPeriodDays = 7 }`
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
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
    #[schemars(length(min = 1))]
    pub image: Option<String>,
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
