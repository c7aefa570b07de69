//! Level B: the whole Claude Code process inside bubblewrap, and Claude Code's own Bash
//! sandbox switched on inside it.
//!
//! The outer boundary: the root filesystem read-only, private `/tmp`, `/dev`, `/proc`
//! and `/run`, other homes hidden, a persistent per-profile home mounted at the user's
//! real home path, and on top of it the [`Boundary`]'s mounts. No capabilities, no new
//! privileges, never host root.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host::Host;
use crate::plan::{Boundary, EnvPlan, LaunchPlan, Mount, Preflight, Why};
use crate::policy::{Tool, HIDDEN, IDE_VARS, PASS};
use crate::profile::Profile;

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
    boundary: &Boundary,
    mut plan: LaunchPlan,
) -> Result<LaunchPlan, Error> {
    let user = boundary.user;
    let home = boundary.home.clone();
    plan.preflight.insert(0, Preflight::program(Tool::Bwrap));
    plan.preflight.insert(1, Preflight::program(Tool::Socat));
    let program = |name: &str| {
        host.program(name)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| name.to_owned())
    };
    let shared = &boundary.mounts;
    plan.dirs.extend(
        shared
            .iter()
            .filter(|m| m.why == Why::ProfileHome)
            .map(|m| m.source.clone()),
    );

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
            .any(|m| Path::new(&*first).starts_with(&m.dest));
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
    for m in shared {
        if user.switch {
            // Under the root layer everything is in place already: bind what that
            // layer shows at each path (the IDE dir's source, for one, is hidden there).
            b.pair(bind_flag(m), &m.dest, &m.dest);
        } else {
            b.pair(bind_flag(m), &m.source, &m.dest);
        }
    }
    b.one("--chdir", &profile.workspace.path);

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
        for (i, m) in shared.iter().enumerate() {
            // Mount points under a fresh tmpfs are created by root; make them
            // traversable for the sandbox user. Never inside an earlier bind of a host
            // dir (the profile's own home is fine): that would create directories on
            // the host, a workspace's `.git` say.
            for dir in mount_point_parents(&m.dest, &home) {
                if made.contains(&dir) {
                    continue;
                }
                made.push(dir.clone());
                let inside_host_dir = shared[..i]
                    .iter()
                    .any(|e| dir.starts_with(&e.dest) && e.why != Why::ProfileHome);
                if !inside_host_dir {
                    r.perms_dir(&dir);
                }
            }
            r.pair(bind_flag(m), &m.source, &m.dest);
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

/// The bubblewrap option that makes `m`.
fn bind_flag(m: &Mount) -> &'static str {
    match (m.writable, m.optional) {
        (true, false) => "--bind",
        (true, true) => "--bind-try",
        (false, false) => "--ro-bind",
        (false, true) => "--ro-bind-try",
    }
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
