//! What a launch does, as data: [`LaunchPlan`] (files, environment, argv, checks) and
//! [`Boundary`] (the mounts levels B and C share). Rendering builds them; `apply`,
//! `preflight` and the CLI carry them out; `clp render` prints them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fsafe::{Dir, FsError};
use crate::model::Level;
use crate::policy::Tool;
use crate::profile::{Profile, Secret};

/// Everything one launch does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchPlan {
    /// The profile's name.
    pub profile: String,
    /// Its isolation level.
    pub level: Level,
    /// The mounts, at levels B and C.
    pub boundary: Option<Boundary>,
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
    /// Symbolic links to make or to remove first.
    pub links: Vec<PlannedLink>,
    /// Checks to run before exec.
    pub preflight: Vec<Preflight>,
    /// What the user should know about this launch (shown by `show`, `doctor`, dry runs).
    pub notes: Vec<String>,
    /// Owner (uid, gid) of the dirs and files the plan creates, when clp runs as root and
    /// the boundary runs as another user.
    pub owner: Option<(u32, u32)>,
    /// Levels B and C: the session's own dir in memory (`<runtime>/<profile>/<session>`):
    /// the IDE lock files as the session sees them, and for a container the lock clp holds
    /// while it lives and the secrets as files (never in the engine's environment).
    pub session_dir: Option<PathBuf>,
    /// Levels B and C: the main install's IDE lock dir, mirrored into the session's view.
    pub ide: Option<IdeView>,
    /// The session's own network (level B, `allowlist` and `offline`).
    pub network: Option<crate::network::NetworkPlan>,
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
    /// An empty file where a mount lands inside a writable mount (the main login in the
    /// profile's home): made if missing, and removed once the profile's last running
    /// session ends if still empty (left behind, a 0-byte `.claude.json` reads as a
    /// corrupt configuration wherever nothing is mounted over it).
    MountPoint,
}

/// A symbolic link clp owns: made where nothing is (level A's shared parts of the main
/// install), or removed where it stands (before a boundary mounts there instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedLink {
    /// The link's path.
    pub link: PathBuf,
    /// What it points to.
    pub target: PathBuf,
    /// Make it, or remove it.
    pub action: LinkAction,
}

/// What to do with a [`PlannedLink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkAction {
    /// Make the link when nothing is at its path.
    Create,
    /// Remove the link when it is exactly this link (to this target); anything else
    /// there stays.
    Remove,
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
        switch: crate::profile::Switch,
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
    /// Ask the backend how much context a request may use (llama-server's `n_ctx`):
    /// the session's budget when the profile does not say, a warning when the profile
    /// says more than the server has.
    Context {
        /// The backend's base URL.
        base: String,
        /// Full URL of the models list.
        models: String,
        /// The profile's model.
        model: Option<String>,
        /// `model.context`, when the profile sets it.
        declared: Option<u32>,
    },
    /// A program must be installed.
    Program {
        /// Its name.
        name: String,
        /// How to install it.
        install: String,
    },
}

impl Preflight {
    /// `tool` must be installed.
    pub fn program(tool: Tool) -> Preflight {
        Preflight::Program {
            name: tool.program().into(),
            install: tool.install().into(),
        }
    }
}

/// Names of the files a plan writes into the profile's state dir.
pub const SETTINGS_FILE: &str = "settings.json";

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

/// The token in a rendered plan that stands for the session (clp's process id at
/// launch), so that concurrent sessions of one profile keep their dirs apart.
pub const SESSION: &str = "<session>";

/// The IDE lock files a session sees: a copy clp owns and keeps current, never the main
/// install's own directory, which a session could otherwise empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdeView {
    /// The main install's `~/.claude/ide`, where the IDEs write their lock files.
    pub real: PathBuf,
    /// The copy in the session dir, mounted read-only where Claude Code looks.
    pub view: PathBuf,
}

impl LaunchPlan {
    /// The plan of one session: `<session>` replaced by `id` wherever it stands.
    pub fn for_session(&self, id: &str) -> LaunchPlan {
        let s = |t: &str| t.replace(SESSION, id);
        let p = |t: &Path| PathBuf::from(s(&t.display().to_string()));
        let mut plan = self.clone();
        plan.argv = plan.argv.iter().map(|a| s(a)).collect();
        plan.session_dir = plan.session_dir.as_deref().map(p);
        if let Some(ide) = &mut plan.ide {
            ide.view = p(&ide.view);
        }
        if let Some(b) = &mut plan.boundary {
            b.session = p(&b.session);
            for m in &mut b.mounts {
                m.source = p(&m.source);
                m.anchor = p(&m.anchor);
            }
        }
        plan
    }
}

/// The mounts of a boundary (levels B and C), in order: later ones shadow earlier ones,
/// so the read-only protections come last. Each level turns them into its own arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Boundary {
    /// Who the session runs as.
    pub user: SessionUser,
    /// The user's home path, where the profile's persistent home is mounted.
    pub home: PathBuf,
    /// The workspace (resolved).
    pub workspace: PathBuf,
    /// The mounts; every source exists (missing optional ones are left out).
    pub mounts: Vec<Mount>,
    /// Protected paths that did not exist at launch: if the session creates one, it is
    /// held aside when the session ends.
    pub watch: Vec<PathBuf>,
    /// The session's own dir (see [`LaunchPlan::session_dir`]).
    pub session: PathBuf,
    /// Claude Code's settings and global config the session can write (its config dir's
    /// `settings.json`, and `.claude.json`), checked after the session for what would run
    /// at the next launch (see `watch::config`).
    pub claude_files: ClaudeFiles,
}

impl Boundary {
    /// `path` (one the session can write, or below one) as the directory it is opened
    /// beneath and the rest: the anchor of the outermost mount whose source holds it
    /// (clp's state root for the profile's state and config dir), so that whatever the
    /// session renamed below that and left a link in its place is never followed. A path
    /// no mount holds is anchored at its parent.
    pub fn anchored(&self, path: &Path) -> (PathBuf, PathBuf) {
        let outer = self
            .mounts
            .iter()
            .filter(|m| path.starts_with(&m.source) && path.starts_with(&m.anchor))
            .min_by_key(|m| m.anchor.components().count());
        let anchor = match outer {
            Some(m) => m.anchor.clone(),
            None => path.parent().unwrap_or(Path::new("/")).to_owned(),
        };
        let rel = path.strip_prefix(&anchor).unwrap_or(path).to_owned();
        (anchor, rel)
    }

    /// The directory holding `path`, opened beneath its anchor ([`Boundary::anchored`])
    /// without following a symbolic link, and `path`'s last component.
    pub fn open_parent(&self, path: &Path) -> Result<(Dir, OsString), FsError> {
        let (anchor, rel) = self.anchored(path);
        let dir = Dir::open_trusted(&anchor)?;
        let (parent, name) = dir.parent_of(&rel)?;
        Ok((parent, name.to_owned()))
    }
}

/// The Claude Code files of a session's config that can make a later launch run code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaudeFiles {
    /// `<config dir>/settings.json` (user settings: hooks, status line, helpers).
    pub settings: PathBuf,
    /// `.claude.json` (user-scope MCP servers): in the config dir, or `~/.claude.json`
    /// for the main install.
    pub global: PathBuf,
    /// The main install's `~/.claude`, when the session writes it (the `oauth` profile):
    /// an entry the session creates there, other than Claude Code's state
    /// ([`crate::policy::MAIN_INSTALL_STATE`]), is held aside after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_install: Option<PathBuf>,
}

/// Who a boundary runs as: the same uid as clp, or (when clp runs as root) an
/// unprivileged user the boundary switches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SessionUser {
    /// Host uid of the session.
    pub uid: u32,
    /// Host gid of the session.
    pub gid: u32,
    /// Whether clp must switch to it (clp runs as root).
    pub switch: bool,
}

/// One host path made visible inside the boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The host path (resolved).
    pub source: PathBuf,
    /// The directory the source is opened beneath, never through a symbolic link: one the
    /// session cannot change (clp's state root, the workspace's parent), or, for paths
    /// inside the workspace, the workspace itself.
    pub anchor: PathBuf,
    /// Where it appears inside.
    pub dest: PathBuf,
    /// Whether the session may write it.
    pub writable: bool,
    /// What the source must be.
    pub kind: MountKind,
    /// Why it is there.
    pub why: Why,
}

/// What a mount's source must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// Either (a protected path can be a file or a directory).
    Any,
}

/// Why a mount exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// The profile's persistent home, at the user's home path.
    ProfileHome,
    /// The profile's state dir (settings, `TMPDIR`, config).
    State,
    /// A config dir outside the state dir.
    ConfigDir,
    /// The normal install's `~/.claude.json` (the OAuth profile's login state).
    MainLogin,
    /// The workspace.
    Workspace,
    /// `workspace.writable`.
    Writable,
    /// `workspace.read-only`.
    ReadOnly,
    /// A directory mounted onto itself, so that it cannot be renamed away and replaced
    /// (the parents of protected paths, `.git` among them, and the profile's home inside
    /// its state dir).
    Pinned,
    /// A workspace path that tools outside the boundary execute later (read-only).
    Protected,
    /// The session's view of the main install's IDE lock files.
    IdeLocks,
    /// A part of the main install's `~/.claude` the profile shares (`claude.share`).
    Shared,
    /// The rendered settings file.
    Settings,
    /// A program the boundary would hide (Claude Code under the home), mounted elsewhere.
    Program,
    /// The container's session dir (its lock, and the secrets as files).
    Session,
}

impl Mount {
    /// A mount of `source` (opened beneath `anchor`) at `dest`.
    pub fn new(source: &Path, anchor: &Path, dest: &Path, writable: bool, why: Why) -> Mount {
        Mount {
            source: source.to_owned(),
            anchor: anchor.to_owned(),
            dest: dest.to_owned(),
            writable,
            kind: MountKind::Dir,
            why,
        }
    }

    /// Of another kind than a directory.
    pub fn kind(mut self, kind: MountKind) -> Mount {
        self.kind = kind;
        self
    }

    /// The source below its anchor.
    pub fn rel(&self) -> &Path {
        self.source
            .strip_prefix(&self.anchor)
            .unwrap_or(Path::new(""))
    }

    /// The token standing for the source's descriptor in a rendered argv: clp opens the
    /// source (never through a symbolic link) and puts the descriptor's number there.
    pub fn fd_token(&self) -> String {
        format!("<fd:{}>", self.source.display())
    }

    /// The token standing for the source's identity (`device:inode`, as `stat -c %d:%i`
    /// prints it) in a rendered argv: clp checks the source and puts what it found there
    /// (level C, where the engine mounts by path).
    pub fn id_token(&self) -> String {
        format!("<id:{}>", self.source.display())
    }
}
