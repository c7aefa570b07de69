//! What clp removes, passes, protects and hides, and how to install what it needs: each
//! list in one place, so the levels, the validator, `clp doctor` and the docs agree.

use std::path::{Path, PathBuf};

use crate::host::Host;
use crate::model::Engine;

/// The Claude Code version clp is tested with: CI installs it, the container profile
/// pins it, `clp --version` names it.
pub const TESTED_CLAUDE_VERSION: &str = "2.1.330";

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

/// Parent variables a boundary (levels B and C) lets in when set, besides [`IDE_VARS`].
pub const PASS: &[&str] = &[
    "PATH",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "NO_COLOR",
    "FORCE_COLOR",
];

/// Environment variables clp sets itself from the profile's typed keys; a profile's
/// `env` table may not set them.
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

/// Paths under the user's home that hold credentials: never a workspace or an extra
/// path, and unreadable to Claude Code's own sandbox even where the outer boundary
/// already hides them.
pub const SECRET_HOME_PATHS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/anthropic",
    ".config/gh",
    ".docker",
    ".kube",
    ".netrc",
    ".git-credentials",
    ".password-store",
];

/// Permission rules every non-OAuth profile gets: Bash always asks...
pub const DEFAULT_ASK: &[&str] = &["Bash"];

/// ...and privilege escalation is denied outright.
pub const DEFAULT_DENY: &[&str] = &[
    "Bash(sudo)",
    "Bash(sudo *)",
    "Bash(su)",
    "Bash(su *)",
    "Bash(doas *)",
    "Bash(pkexec *)",
];

/// Workspace paths that tools outside the boundary execute later, read-only inside B
/// and C unless the profile sets `workspace.protect`: git's config and hooks (and `.git`
/// itself, which must not be swapped for a planted one), Claude Code's project settings
/// (hooks, `statusLine`, `apiKeyHelper`, permission rules your normal `claude` would
/// obey), MCP servers, the editor's tasks and settings, direnv. Submodules'
/// `.git/modules/*/config` and `hooks` are added where `.git/modules` exists.
///
/// More steer git without touching `.git/config`: a `.git/commondir` makes git read the
/// config and hooks of the directory it names; `.git/config.worktree` is read as config
/// when `extensions.worktreeConfig` is set (`git sparse-checkout` sets it); and a `HEAD`
/// at the top of the workspace (next to `objects/` and `refs/`) makes git take the
/// workspace itself for the repository, with its `config`, as soon as `.git` is no longer
/// valid (a moved `.git/HEAD`). Missing ones are held aside if a session makes them.
pub const DEFAULT_PROTECT: &[&str] = &[
    ".git",
    ".git/hooks",
    ".git/config",
    ".git/config.worktree",
    ".git/commondir",
    "HEAD",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".mcp.json",
    ".vscode",
    ".envrc",
];

/// The entries of [`DEFAULT_PROTECT`] that `workspace.protect-git = false` removes: its
/// first six, git's.
pub const GIT_PROTECT: &[&str] = DEFAULT_PROTECT.split_at(6).0;

/// Directories level B replaces with an empty tmpfs (besides the user's home, which
/// becomes the profile's persistent home).
pub const HIDDEN: &[&str] = &["/tmp", "/run", "/home", "/root"];

/// A program clp runs or needs on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Claude Code itself.
    Claude,
    /// bubblewrap (level B).
    Bwrap,
    /// socat (Claude Code's own Bash sandbox inside level B).
    Socat,
    /// setpriv (level B as root).
    Setpriv,
    /// Podman (level C).
    Podman,
    /// Docker (level C).
    Docker,
    /// runc (rootful Podman on hybrid cgroups).
    Runc,
}

impl Tool {
    /// The program's name on `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Claude => "claude",
            Tool::Bwrap => "bwrap",
            Tool::Socat => "socat",
            Tool::Setpriv => "setpriv",
            Tool::Podman => "podman",
            Tool::Docker => "docker",
            Tool::Runc => "runc",
        }
    }

    /// How to install it.
    pub fn install(self) -> &'static str {
        match self {
            Tool::Claude => "npm install -g @anthropic-ai/claude-code",
            Tool::Bwrap => "apt-get install bubblewrap (Fedora: dnf install bubblewrap)",
            Tool::Socat => "apt-get install socat (Claude Code's Bash sandbox needs it)",
            Tool::Setpriv => "apt-get install util-linux",
            Tool::Podman => "apt-get install podman runc uidmap (Fedora: dnf install podman)",
            Tool::Docker => "apt-get install docker.io (or Docker's own packages)",
            Tool::Runc => "apt-get install runc",
        }
    }

    /// The tool that runs `engine` (Podman for `auto`, which [`crate::level::container`]
    /// resolves first).
    pub fn engine(engine: Engine) -> Tool {
        match engine {
            Engine::Docker => Tool::Docker,
            Engine::Podman | Engine::Auto => Tool::Podman,
        }
    }
}

/// System trees: never a workspace or an extra path, nor anything inside them...
pub const SYSTEM_TREES: &[&str] = &[
    "/etc", "/usr", "/boot", "/proc", "/sys", "/dev", "/run", "/var", "/bin", "/sbin", "/lib",
    "/lib32", "/lib64", "/libx32", "/snap",
];

/// ...except inside these, where projects live (`/var/www/site`, `/var/tmp/x`).
pub const SYSTEM_TREE_EXCEPTIONS: &[&str] = &["/var/tmp", "/var/www"];

/// Shared roots: never a workspace themselves (everyone's files are there), but a
/// project inside one is fine (`/tmp/x`, `/srv/x`).
pub const SHARED_ROOTS: &[&str] = &[
    "/", "/tmp", "/var/tmp", "/var/www", "/home", "/mnt", "/media", "/srv", "/opt",
];

/// Why `path` (absolute) can never be a workspace or an extra path, after resolving its
/// symbolic links; `None` when it can be. The one place these rules live: `/` and the
/// shared roots themselves, the home or any ancestor of it, another account's home, the
/// normal install (`~/.claude`, `~/.claude.json`), a credential directory, clp's own
/// config and state, and the system trees. Being one, inside one or (for what a path
/// could contain) around one all count: `~/.config` contains `~/.config/gcloud`.
pub fn refused_path(path: &Path, host: &Host) -> Option<String> {
    let real = host.realpath(path);
    if SHARED_ROOTS.iter().any(|r| real == Path::new(r)) {
        return Some(if real == Path::new("/") {
            "is the whole disk".into()
        } else {
            "is shared by everyone (a project inside it is fine)".into()
        });
    }
    let home = host.realpath(&host.home);
    if home.starts_with(&real) {
        return Some(if home == real {
            "is your whole home".into()
        } else {
            format!("contains your whole home (`{}`)", home.display())
        });
    }
    let mut sensitive: Vec<(PathBuf, &str)> = host
        .other_homes()
        .iter()
        .map(|h| (h.clone(), "another account's home"))
        .collect();
    for main in [host.main_claude_dir(), host.home.join(".claude.json")] {
        sensitive.push((host.realpath(&main), "the normal install's config"));
    }
    for secret in SECRET_HOME_PATHS {
        sensitive.push((host.realpath(&host.home.join(secret)), "a credential store"));
    }
    let clp_config = host.profiles_dir.parent().unwrap_or(&host.profiles_dir);
    for own in [clp_config, host.state_dir.as_path()] {
        sensitive.push((host.realpath(own), "clp's own config or state"));
    }
    for (p, what) in &sensitive {
        let at = || format!("`{}`", p.display());
        if real == *p {
            return Some(format!("is {what}"));
        }
        if real.starts_with(p) {
            return Some(format!("is inside {what} ({})", at()));
        }
        if p.starts_with(&real) {
            return Some(format!("contains {what} ({})", at()));
        }
    }
    let excepted = SYSTEM_TREE_EXCEPTIONS
        .iter()
        .any(|e| real.starts_with(e) && real != Path::new(e));
    if !excepted {
        if let Some(tree) = SYSTEM_TREES.iter().find(|t| real.starts_with(t)) {
            return Some(format!("is inside the system tree `{tree}`"));
        }
    }
    None
}

/// The entries at the top of the main install's `~/.claude` that Claude Code itself
/// writes during a session (transcripts, todos, caches, its login, its settings, which
/// `watch::config` checks after the session). They stay writable for the `oauth` profile
/// at levels B and C. Every other entry (`CLAUDE.md`, `agents`, `skills`, `commands`,
/// `rules`, `hooks`, `plugins`, `output-styles`, `local`, a script a setting names, ...)
/// is read-only there when it exists, and one the session creates is held aside when it
/// ends: plain `claude` obeys or runs them, outside any boundary.
pub const MAIN_INSTALL_STATE: &[&str] = &[
    ".credentials.json",
    "settings.json",
    "history.jsonl",
    "stats-cache.json",
    "policy-limits.json",
    "remote-settings.json",
    "projects",
    "todos",
    "statsig",
    "shell-snapshots",
    "session-env",
    "file-history",
    "plans",
    "debug",
    "paste-cache",
    "image-cache",
    "backups",
    "cache",
    "telemetry",
    "sessions",
    "tasks",
    "jobs",
    "teams",
    "memory",
    "usage-data",
    "daemon",
    "ide",
];

#[cfg(test)]
mod tests {
    #[test]
    fn git_protect_is_exactly_the_git_entries_of_the_default() {
        let git = |p: &&str| p.starts_with(".git") || *p == "HEAD";
        let expected: Vec<&str> = super::DEFAULT_PROTECT.iter().copied().filter(git).collect();
        assert_eq!(super::GIT_PROTECT, expected.as_slice());
    }
}
