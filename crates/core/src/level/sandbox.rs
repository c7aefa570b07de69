//! Level B: the whole Claude Code process inside bubblewrap, and Claude Code's own Bash
//! sandbox switched on inside it.
//!
//! The outer boundary: the root filesystem read-only, private `/tmp`, `/dev`, `/proc`
//! and `/run`, other homes hidden, the profile's persistent home at the user's real home
//! path, and on top of it the [`Boundary`]'s mounts, each passed as a descriptor clp
//! opened without following symbolic links (`--bind-fd`). No capabilities, no new
//! privileges, a seccomp filter ([`crate::seccomp`]), never host root.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host::Host;
use crate::plan::{Boundary, EnvPlan, LaunchPlan, Mount, MountKind, Preflight, Why};
use crate::policy::{Tool, HIDDEN, IDE_VARS, PASS};
use crate::profile::Profile;

/// Where a program installed under a hidden directory is mounted inside.
const RELOCATED: &str = "/run/clp";

/// Where the root layer stages each mount for the user layer (see [`wrap`]).
const STAGING: &str = "/run/clp/m";

/// The token in argv that stands for the seccomp filter's descriptor.
pub const SECCOMP_FD: &str = "<fd:seccomp>";

/// Wraps `plan` (argv, env) in bubblewrap.
///
/// As a normal user: one bubblewrap with a user namespace. As root: a first bubblewrap
/// without a user namespace (a user namespace would keep host uid 0), with only the
/// capabilities `setpriv` needs to become the session user, then the normal-user
/// bubblewrap inside it. The root layer mounts each source (by descriptor) at a staging
/// place of its own, `/run/clp/m/N`, and the user layer mounts those where they belong:
/// so root never creates a mount point, or resolves a path, inside a directory the
/// session user can write. The second layer also gives Claude Code a `/proc` of its own,
/// which its nested Bash sandbox needs ("Can't mount proc" under a root bubblewrap, which
/// leaves `/proc/irq` and `/proc/bus` bound read-only).
pub fn wrap(
    profile: &Profile,
    host: &Host,
    mut boundary: Boundary,
    mut plan: LaunchPlan,
) -> Result<LaunchPlan, Error> {
    let user = boundary.user;
    plan.preflight.insert(0, Preflight::program(Tool::Bwrap));
    plan.preflight.insert(1, Preflight::program(Tool::Socat));
    plan.dirs.extend(
        boundary
            .mounts
            .iter()
            .filter(|m| m.why == Why::ProfileHome)
            .map(|m| m.source.clone()),
    );
    if let Some(program) = relocate(profile, host, &boundary, &mut plan.argv) {
        // First, so that the workspace and the rest land on top of `/run`'s tmpfs.
        boundary.mounts.insert(0, program);
    }
    let mounts = &boundary.mounts;
    let program = |tool: Tool| {
        host.program(tool.program())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| tool.program().to_owned())
    };
    let resolv = host
        .resolv_conf
        .as_ref()
        .filter(|t| t.starts_with("/run") || t.starts_with("/var/run"));

    let mut argv = Vec::new();
    if user.switch {
        plan.preflight.insert(2, Preflight::program(Tool::Setpriv));
        argv.push(program(Tool::Bwrap));
        argv.extend(root_layer(resolv, mounts));
        argv.push("--".into());
        argv.extend([
            program(Tool::Setpriv),
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
             (a root bubblewrap stages the mounts, then a user-namespace bubblewrap runs \
             Claude Code)",
            user.uid, user.gid
        ));
    }
    argv.push(program(Tool::Bwrap));
    argv.extend(user_layer(
        resolv,
        mounts,
        user.switch,
        &profile.workspace.path,
    ));
    argv.push("--".into());
    argv.extend(std::mem::take(&mut plan.argv));
    plan.argv = argv;

    plan.env = sandbox_env(plan.env, &boundary.home);
    plan.notes.push(
        "Claude Code's Bash sandbox is on inside bubblewrap (failIfUnavailable, no \
         unsandboxed fallback); every Bash command asks first"
            .into(),
    );
    plan.notes
        .push(format!("inside the sandbox, {}", crate::seccomp::REFUSED));
    plan.boundary = Some(boundary);
    Ok(plan)
}

/// The options of the bubblewrap that runs as the session user (the only one when clp
/// is not root). Under the root layer its mounts come from the staging places.
fn user_layer(
    resolv: Option<&PathBuf>,
    mounts: &[Mount],
    staged: bool,
    workspace: &Path,
) -> Vec<String> {
    let mut b = Args::default();
    b.flags(&["--die-with-parent", "--unshare-all", "--share-net"]);
    b.flags(&["--cap-drop", "ALL", "--seccomp", SECCOMP_FD]);
    b.pair("--ro-bind", "/", "/");
    b.one("--dev", "/dev");
    b.one("--proc", "/proc");
    // Every hidden directory, the one holding the home too: the home is mounted on top,
    // and a render then does not depend on where the home is (`render --portable` by
    // root, whose home is `/root`, is the user's).
    for h in HIDDEN {
        b.one("--tmpfs", h);
    }
    if let Some(t) = resolv {
        b.pair("--ro-bind", t, t);
    }
    for (i, m) in mounts.iter().enumerate() {
        if staged {
            let flag = if m.writable { "--bind" } else { "--ro-bind" };
            b.pair(flag, Path::new(STAGING).join(i.to_string()), &m.dest);
        } else {
            b.pair(fd_flag(m), m.fd_token(), &m.dest);
        }
    }
    b.one("--chdir", workspace);
    b.0
}

/// The options of the root bubblewrap (no user namespace): private `/tmp`, `/run` and
/// homes, and each mount's source, by descriptor, at its staging place in a tmpfs only
/// root has written to.
fn root_layer(resolv: Option<&PathBuf>, mounts: &[Mount]) -> Vec<String> {
    let mut r = Args::default();
    r.flags(&[
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
    ]);
    r.flags(&["--unshare-cgroup-try", "--cap-drop", "ALL"]);
    // setpriv needs SETUID/SETGID to change ids and SETPCAP to empty the bounding set.
    for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"] {
        r.flags(&["--cap-add", cap]);
    }
    r.pair("--ro-bind", "/", "/");
    // The inner layer mounts its own /proc; this one must not overmount parts of it.
    r.pair("--bind", "/proc", "/proc");
    r.one("--dev", "/dev");
    r.perms("1777", "--tmpfs", "/tmp");
    r.perms("1777", "--tmpfs", "/dev/shm");
    for h in HIDDEN.iter().filter(|h| **h != "/tmp") {
        r.one("--tmpfs", h);
    }
    if let Some(t) = resolv {
        r.pair("--ro-bind", t, t);
    }
    r.perms("0755", "--dir", RELOCATED);
    r.perms("0755", "--dir", STAGING);
    for (i, m) in mounts.iter().enumerate() {
        r.pair(
            fd_flag(m),
            m.fd_token(),
            Path::new(STAGING).join(i.to_string()),
        );
    }
    r.0
}

/// A program installed somewhere the sandbox hides (Claude Code in `~/.local` or an npm
/// prefix in the home, clp itself in `~/.cargo/bin` for `doctor`) is mounted read-only
/// under `/run/clp` and run from there: the mount, and `argv[0]` rewritten.
fn relocate(
    profile: &Profile,
    host: &Host,
    boundary: &Boundary,
    argv: &mut [String],
) -> Option<Mount> {
    let first = argv.first_mut()?;
    let is_claude = *first == crate::render::claude_program(profile, host);
    let target = host
        .program_targets
        .get(&profile.claude.command)
        .filter(|_| is_claude)
        .cloned()
        .unwrap_or_else(|| PathBuf::from(&*first));
    let home = &boundary.home;
    let hidden = target.starts_with(home) || HIDDEN.iter().any(|h| target.starts_with(h));
    let bound = boundary
        .mounts
        .iter()
        .any(|m| Path::new(&*first).starts_with(&m.dest));
    if !(target.is_absolute() && hidden && !bound) {
        return None;
    }
    let root = install_root(&target);
    let dest = Path::new(RELOCATED).join(root.file_name().unwrap_or_default());
    let inside = match target.strip_prefix(&root) {
        Ok(rel) if !rel.as_os_str().is_empty() => dest.join(rel),
        _ => dest.clone(),
    };
    *first = inside.display().to_string();
    let anchor = root.parent().unwrap_or(Path::new("/"));
    let kind = if root == target {
        MountKind::File
    } else {
        MountKind::Dir
    };
    Some(Mount::new(&root, anchor, &dest, false, Why::Program).kind(kind))
}

/// The bubblewrap option that mounts `m`'s descriptor.
fn fd_flag(m: &Mount) -> &'static str {
    if m.writable {
        "--bind-fd"
    } else {
        "--ro-bind-fd"
    }
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
    fn perms(&mut self, mode: &str, flag: &str, dir: &str) {
        self.flags(&["--perms", mode, flag, dir]);
    }
    fn flags(&mut self, flags: &[&str]) {
        self.0.extend(flags.iter().map(|f| f.to_string()));
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
