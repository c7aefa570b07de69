//! Level B: the whole Claude Code process inside bubblewrap, and Claude Code's own Bash
//! sandbox switched on inside it.
//!
//! The outer boundary: the root filesystem read-only, private `/tmp`, `/dev`, `/proc`
//! and `/run`, other homes hidden, a persistent per-profile home mounted at the user's
//! real home path, and on top of it only the workspace, the profile's own dirs and the
//! extra paths the profile names. No capabilities, no new privileges, never host root.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::host::Host;
use crate::model::NetworkMode;
use crate::render::{EnvPlan, LaunchPlan, Preflight, RenderError, StatePaths, IDE_VARS};
use crate::resolve::Profile;

/// Parent variables a sandboxed Claude Code gets (when set), besides the IDE's.
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

/// Paths under the user's home that hold secrets; Claude Code's own sandbox is told not
/// to read them even though the outer boundary already hides them.
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

/// Where the sandbox runs as: the same uid as clp, or (when clp runs as root) an
/// unprivileged user that bubblewrap switches to inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxUser {
    /// Host uid of the sandboxed process.
    pub uid: u32,
    /// Host gid of the sandboxed process.
    pub gid: u32,
    /// Whether clp must switch to it (clp runs as root).
    pub switch: bool,
}

/// Picks the uid the sandbox runs as. As root: `isolation.user`, else the workspace's
/// owner; never uid 0, since root without capabilities still reads root-owned files.
pub fn sandbox_user(profile: &Profile, host: &Host) -> Result<SandboxUser, RenderError> {
    if host.uid != 0 {
        return Ok(SandboxUser {
            uid: host.uid,
            gid: host.gid,
            switch: false,
        });
    }
    if let Some(name) = &profile.isolation.user {
        let user = host.users.get(name).ok_or_else(|| RenderError {
            message: format!("`isolation.user` names `{name}`, which is not a user here"),
            hint: Some("create it (`useradd -m NAME`) or name an existing user".into()),
        })?;
        if user.uid == 0 {
            return Err(RenderError {
                message: format!("`isolation.user` is `{name}`, which is root"),
                hint: Some("name an unprivileged user: the sandbox never runs as root".into()),
            });
        }
        return Ok(SandboxUser {
            uid: user.uid,
            gid: user.gid,
            switch: true,
        });
    }
    let (uid, gid) = host.cwd_owner;
    if uid == 0 || profile.workspace.path != host.cwd {
        return Err(RenderError {
            message: "clp runs as root and the sandbox would run as root too".into(),
            hint: Some(
                "run clp as your normal user, or set `isolation.user = \"NAME\"` (or \
                 `--set isolation.user=NAME`) to the unprivileged user the sandbox runs as"
                    .into(),
            ),
        });
    }
    Ok(SandboxUser {
        uid,
        gid,
        switch: true,
    })
}

/// Claude Code's own `sandbox` settings for a sandboxed profile: on, failing closed, never
/// auto-allowing Bash, secrets unreadable, the network limited to the profile's list.
pub fn inner_sandbox_settings(profile: &Profile) -> Value {
    let home = "~";
    let deny_read: Vec<String> = SECRET_HOME_PATHS
        .iter()
        .map(|p| format!("{home}/{p}"))
        .collect();
    let mut network = json!({});
    let mut domains: Vec<String> = Vec::new();
    if profile.network.mode != NetworkMode::Offline {
        domains.extend(profile.network.allow.iter().cloned());
    }
    if let Some(b) = &profile.backend {
        let host = b.host_port.rsplit_once(':').map_or(&*b.host_port, |h| h.0);
        if !domains.iter().any(|d| d == host) {
            domains.push(host.to_owned());
        }
    }
    network["allowedDomains"] = json!(domains);
    if profile.backend.as_ref().is_some_and(|b| b.local) {
        network["allowLocalBinding"] = json!(false);
    }
    json!({
        "enabled": true,
        "failIfUnavailable": true,
        "allowUnsandboxedCommands": false,
        "autoAllowBashIfSandboxed": false,
        "filesystem": { "denyRead": deny_read },
        "network": network,
    })
}

/// Directories the sandbox replaces with an empty tmpfs (besides the user's home, which
/// becomes the profile's persistent home).
const HIDDEN: &[&str] = &["/tmp", "/run", "/home", "/root"];

/// Where a program installed under a hidden directory is mounted inside.
const RELOCATED: &str = "/run/clp";

/// Wraps `plan` (argv, env) in bubblewrap.
///
/// As a normal user: one bubblewrap with a user namespace. As root: a first bubblewrap
/// without a user namespace (a user namespace would keep host uid 0) sets up the same
/// mounts with only the capabilities `setpriv` needs to become the sandbox user, then
/// the normal-user bubblewrap runs inside it. The second layer gives Claude Code a
/// `/proc` of its own, which its nested Bash sandbox needs: under a root bubblewrap it
/// fails with "Can't mount proc" (root's bubblewrap leaves `/proc/irq` and `/proc/bus`
/// bound read-only, which forbids a new proc mount in a child user namespace).
pub fn wrap(
    profile: &Profile,
    host: &Host,
    mut plan: LaunchPlan,
) -> Result<LaunchPlan, RenderError> {
    let user = sandbox_user(profile, host)?;
    let paths = StatePaths::of(profile);
    let home = host.home.clone();
    plan.preflight.insert(
        0,
        Preflight::Program {
            name: "bwrap".into(),
            install: "apt-get install bubblewrap (Fedora: dnf install bubblewrap)".into(),
        },
    );
    plan.preflight.insert(
        1,
        Preflight::Program {
            name: "socat".into(),
            install: "apt-get install socat (Claude Code's Bash sandbox needs it)".into(),
        },
    );
    let program = |name: &str| {
        host.program(name)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| name.to_owned())
    };

    // The mounts both layers make, in order: later binds shadow earlier ones, so the
    // read-only protections come last.
    let mut shared: Vec<(&str, PathBuf, PathBuf)> = Vec::new();
    shared.push(("--bind", paths.home.clone(), home.clone()));
    plan.dirs.push(paths.home.clone());
    shared.push(("--bind", paths.root.clone(), paths.root.clone()));
    let config = &profile.isolation.config_dir;
    if !config.starts_with(&paths.root) {
        shared.push(("--bind", config.clone(), config.clone()));
    }
    if profile.isolation.main_config {
        // The normal install at level B: its login state stays usable and refreshable.
        let json = home.join(".claude.json");
        shared.push(("--bind-try", json.clone(), json));
    }
    let ws = &profile.workspace.path;
    shared.push(("--bind", ws.clone(), ws.clone()));
    for p in &profile.workspace.writable {
        shared.push(("--bind-try", p.clone(), p.clone()));
    }
    for p in &profile.workspace.read_only {
        shared.push(("--ro-bind-try", p.clone(), p.clone()));
    }
    if profile.workspace.protect_git {
        for p in [".git/hooks", ".git/config"] {
            let p = ws.join(p);
            shared.push(("--ro-bind-try", p.clone(), p));
        }
    }
    if host.ide_dir_exists && !profile.isolation.main_config {
        let ide = host.main_claude_dir().join("ide");
        shared.push(("--ro-bind", ide, config.join("ide")));
    }
    // The settings file defines the boundary's rules and Claude Code reloads it when it
    // changes: nothing inside may edit it.
    if plan.files.iter().any(|f| f.path == paths.settings) {
        shared.push(("--ro-bind", paths.settings.clone(), paths.settings.clone()));
    }

    // A program installed somewhere the sandbox hides (Claude Code in `~/.local` or an
    // npm prefix in the home, clp itself in `~/.cargo/bin` for `doctor`) is mounted
    // read-only under /run/clp and run from there.
    let mut relocated: Option<(PathBuf, PathBuf)> = None;
    if let Some(first) = plan.argv.first_mut() {
        let is_claude = *first == crate::render::claude_program(profile, host);
        let target = host
            .program_targets
            .get(&profile.claude.command)
            .filter(|_| is_claude)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(&*first));
        let hidden = target.starts_with(&home) || HIDDEN.iter().any(|h| target.starts_with(h));
        let bound = shared
            .iter()
            .any(|(_, _, dst)| Path::new(&*first).starts_with(dst));
        if target.is_absolute() && hidden && !bound {
            let root = install_root(&target);
            let dest = Path::new(RELOCATED).join(root.file_name().unwrap_or_default());
            let inside = match target.strip_prefix(&root) {
                Ok(rel) if !rel.as_os_str().is_empty() => dest.join(rel),
                _ => dest.clone(),
            };
            *first = inside.display().to_string();
            relocated = Some((root, dest));
        }
    }

    let resolv = host
        .resolv_conf
        .as_ref()
        .filter(|t| t.starts_with("/run") || t.starts_with("/var/run"));

    // The normal-user layer (the only one when clp is not root).
    let mut b = Args::default();
    b.flag("--die-with-parent");
    if !user.switch {
        // Own session: no TIOCSTI into the terminal clp was started from. As root the
        // first layer makes the session.
        b.flag("--new-session");
    }
    b.flag("--unshare-all");
    b.flag("--share-net");
    b.flag("--cap-drop");
    b.flag("ALL");
    b.pair("--ro-bind", "/", "/");
    b.one("--dev", "/dev");
    b.one("--proc", "/proc");
    for h in HIDDEN {
        if Path::new(h) != home {
            b.one("--tmpfs", h);
        }
    }
    if let Some(t) = resolv {
        b.pair("--ro-bind", t, t);
    }
    match (&relocated, user.switch) {
        (Some(_), true) => b.pair("--ro-bind", RELOCATED, RELOCATED),
        (Some((root, dest)), false) => {
            b.perms_dir(RELOCATED);
            b.pair("--ro-bind", root, dest);
        }
        (None, _) => {}
    }
    for (how, src, dst) in &shared {
        if user.switch {
            // Under the root layer everything is in place already: bind what that
            // layer shows at each path (the IDE dir's source, for one, is hidden there).
            b.pair(how, dst, dst);
        } else {
            b.pair(how, src, dst);
        }
    }
    b.one("--chdir", ws);

    let mut argv = Vec::new();
    if user.switch {
        let mut r = Args::default();
        r.flag("--die-with-parent");
        r.flag("--new-session");
        for ns in [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ] {
            r.flag(ns);
        }
        r.flag("--cap-drop");
        r.flag("ALL");
        // setpriv needs SETUID/SETGID to change ids and SETPCAP to empty the bounding set.
        for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"] {
            r.flag("--cap-add");
            r.flag(cap);
        }
        r.pair("--ro-bind", "/", "/");
        // The inner layer mounts its own /proc; this one must not overmount parts of it.
        r.pair("--bind", "/proc", "/proc");
        r.one("--dev", "/dev");
        r.perms_tmpfs("1777", "/tmp");
        r.perms_tmpfs("1777", "/dev/shm");
        for h in HIDDEN.iter().filter(|h| **h != "/tmp") {
            if Path::new(h) != home {
                r.one("--tmpfs", h);
            }
        }
        if let Some(t) = resolv {
            r.pair("--ro-bind", t, t);
        }
        if let Some((root, dest)) = &relocated {
            r.perms_dir(RELOCATED);
            r.pair("--ro-bind", root, dest);
        }
        let mut made: Vec<PathBuf> = Vec::new();
        for (i, (how, src, dst)) in shared.iter().enumerate() {
            // Mount points under a fresh tmpfs are created by root; make them
            // traversable for the sandbox user. Never inside an earlier bind of a host
            // dir (the profile's own home is fine): that would create directories on
            // the host, a workspace's `.git` say.
            for dir in mount_point_parents(dst, &home) {
                if made.contains(&dir) {
                    continue;
                }
                made.push(dir.clone());
                let inside_host_dir = shared[..i]
                    .iter()
                    .any(|(_, s, d)| dir.starts_with(d) && *s != paths.home);
                if !inside_host_dir {
                    r.perms_dir(&dir);
                }
            }
            r.pair(how, src, dst);
        }
        argv.push(program("bwrap"));
        argv.extend(r.0);
        argv.push("--".into());
        argv.extend([
            program("setpriv"),
            format!("--reuid={}", user.uid),
            format!("--regid={}", user.gid),
            "--clear-groups".into(),
            "--inh-caps=-all".into(),
            "--bounding-set=-all".into(),
            "--no-new-privs".into(),
            "--".into(),
        ]);
        plan.owner = Some((user.uid, user.gid));
        plan.notes.push(format!(
            "clp runs as root: the sandbox runs as uid {} gid {} with no capabilities \
             (a root bubblewrap sets up the mounts, then a user-namespace bubblewrap runs \
             Claude Code)",
            user.uid, user.gid
        ));
    }
    argv.push(program("bwrap"));
    argv.extend(b.0);
    argv.push("--".into());
    argv.extend(std::mem::take(&mut plan.argv));
    plan.argv = argv;

    plan.env = sandbox_env(plan.env, &home);
    plan.notes.push(
        "Claude Code's Bash sandbox is on inside bubblewrap (failIfUnavailable, no \
         unsandboxed fallback); every Bash command asks first"
            .into(),
    );
    Ok(plan)
}

/// The directories between a fresh tmpfs (or the home) and a mount point, outermost first.
fn mount_point_parents(dst: &Path, home: &Path) -> Vec<PathBuf> {
    let roots: Vec<&Path> = HIDDEN
        .iter()
        .map(Path::new)
        .chain([home])
        .filter(|r| dst.starts_with(r) && dst != *r)
        .collect();
    let Some(root) = roots.iter().max_by_key(|r| r.components().count()) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = dst
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(root) && a != root)
        .map(Path::to_path_buf)
        .collect();
    dirs.reverse();
    dirs
}

/// Inside the sandbox only chosen variables pass: no parent secrets.
fn sandbox_env(mut env: EnvPlan, home: &Path) -> EnvPlan {
    env.inherit = false;
    env.pass = PASS.iter().chain(IDE_VARS).map(|s| s.to_string()).collect();
    env.set.insert("HOME".into(), home.display().to_string());
    env
}

/// The directory to bind for a program installed under the home: its npm package
/// (`.../node_modules/@scope/name`) or, for a standalone binary, the file itself.
fn install_root(target: &Path) -> PathBuf {
    let parts: Vec<_> = target.components().collect();
    if let Some(i) = parts.iter().position(|c| c.as_os_str() == "node_modules") {
        let scoped = parts
            .get(i + 1)
            .is_some_and(|c| c.as_os_str().to_string_lossy().starts_with('@'));
        let end = (i + if scoped { 3 } else { 2 }).min(parts.len());
        return parts[..end].iter().collect();
    }
    target.to_owned()
}

/// bwrap arguments, kept as strings.
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn perms_dir(&mut self, dir: impl AsRef<Path>) {
        self.flag("--perms");
        self.flag("0755");
        self.one("--dir", dir);
    }
    fn perms_tmpfs(&mut self, mode: &str, dir: &str) {
        self.flag("--perms");
        self.flag(mode);
        self.one("--tmpfs", dir);
    }
    fn flag(&mut self, f: &str) {
        self.0.push(f.to_owned());
    }
    fn one(&mut self, f: &str, p: impl AsRef<Path>) {
        self.0.push(f.to_owned());
        self.0.push(p.as_ref().display().to_string());
    }
    fn pair(&mut self, f: &str, src: impl AsRef<Path>, dst: impl AsRef<Path>) {
        self.0.push(f.to_owned());
        self.0.push(src.as_ref().display().to_string());
        self.0.push(dst.as_ref().display().to_string());
    }
}
