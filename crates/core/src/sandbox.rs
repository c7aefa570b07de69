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

/// Wraps `plan` (argv, env) in bubblewrap.
pub fn wrap(
    profile: &Profile,
    host: &Host,
    mut plan: LaunchPlan,
) -> Result<LaunchPlan, RenderError> {
    let user = sandbox_user(profile, host)?;
    let paths = StatePaths::of(profile);
    let home = host.home.clone();
    let bwrap = host
        .program("bwrap")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "bwrap".into());
    plan.preflight.insert(
        0,
        Preflight::Program {
            name: "bwrap".into(),
            install: "apt-get install bubblewrap socat (Fedora: dnf install bubblewrap socat)"
                .into(),
        },
    );
    plan.preflight.insert(
        1,
        Preflight::Program {
            name: "socat".into(),
            install: "apt-get install socat (Claude Code's Bash sandbox needs it)".into(),
        },
    );

    let mut a = Args::default();
    a.flag("--die-with-parent");
    a.flag("--new-session");
    if user.switch {
        // As root without a user namespace (which would keep host uid 0): private
        // namespaces, and only the two capabilities setpriv needs to drop to the user.
        for ns in [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ] {
            a.flag(ns);
        }
        a.flag("--cap-drop");
        a.flag("ALL");
        a.flag("--cap-add");
        a.flag("CAP_SETUID");
        a.flag("--cap-add");
        a.flag("CAP_SETGID");
    } else {
        a.flag("--unshare-all");
        a.flag("--share-net");
        a.flag("--cap-drop");
        a.flag("ALL");
    }
    a.pair("--ro-bind", "/", "/");
    a.one("--dev", "/dev");
    a.one("--proc", "/proc");
    a.one("--tmpfs", "/tmp");
    a.one("--tmpfs", "/dev/shm");
    a.one("--tmpfs", "/run");
    if let Some(target) = &host.resolv_conf {
        if target.starts_with("/run") || target.starts_with("/var/run") {
            a.pair("--ro-bind", target, target);
        }
    }
    // Other users' homes and root's.
    for hidden in ["/home", "/root"] {
        if Path::new(hidden) != home {
            a.one("--tmpfs", hidden);
        }
    }
    a.pair("--bind", &paths.home, &home);
    plan.dirs.push(paths.home.clone());

    // Claude Code's binary, when installed under the home the sandbox hides.
    for (name, found) in &host.programs {
        if name != &profile.claude.command && !profile.claude.command.ends_with(&format!("/{name}"))
        {
            continue;
        }
        let target = host.program_targets.get(name).unwrap_or(found);
        if target.starts_with(&home) {
            let root = install_root(target);
            a.pair("--ro-bind", &root, &root);
        }
        if found.starts_with(&home) && found != target {
            a.pair("--ro-bind", target, found);
        }
    }

    // The profile's own dirs, then the workspace, then extra paths: later binds shadow
    // earlier ones, so read-only protections come last.
    a.pair("--bind", &paths.root, &paths.root);
    let config = &profile.isolation.config_dir;
    if !config.starts_with(&paths.root) {
        a.pair("--bind", config, config);
    }
    if profile.isolation.main_config {
        // The normal install at level B: its login state must stay usable.
        let json = home.join(".claude.json");
        a.pair("--bind-try", &json, &json);
    }
    let ws = &profile.workspace.path;
    a.pair("--bind", ws, ws);
    for p in &profile.workspace.writable {
        a.pair("--bind-try", p, p);
    }
    for p in &profile.workspace.read_only {
        a.pair("--ro-bind-try", p, p);
    }
    if profile.workspace.protect_git {
        for p in [".git/hooks", ".git/config"] {
            let p = ws.join(p);
            a.pair("--ro-bind-try", &p, &p);
        }
    }
    if host.ide_dir_exists && !profile.isolation.main_config {
        let ide = host.main_claude_dir().join("ide");
        a.pair("--ro-bind", &ide, config.join("ide"));
    }
    a.one("--chdir", ws);

    let mut argv = vec![bwrap];
    argv.extend(a.0);
    argv.push("--".into());
    if user.switch {
        let setpriv = host
            .program("setpriv")
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "setpriv".into());
        argv.extend([
            setpriv,
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
            "clp runs as root: the sandbox runs as uid {} gid {}, with no capabilities",
            user.uid, user.gid
        ));
    }
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
