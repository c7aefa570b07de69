//! Level B with real bubblewrap: the escape suite, the allowed side, the normal install
//! untouched, and the real Claude Code inside (its Bash tool confined by the inner
//! sandbox), each as root and as a normal user.
//!
//! As root, clp runs with `isolation.user` set to the test user. "As a user" runs clp
//! itself as the test user (`$CLP_TEST_USER`, created by `.ci/run`) through setpriv, with
//! a HOME of its own; when the suite itself runs as a normal user, that user is used.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use clp_test_backend::{Backend, Config, ToolScript};

use crate::common::{self, assert_only_changed, require, text, tree};

/// Who runs clp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As {
    /// clp runs as root and hands the sandbox to the test user.
    Root,
    /// clp runs as the unprivileged test user.
    User,
}

#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// The unprivileged user the suite uses.
pub fn test_user() -> Option<TestUser> {
    if !is_root() {
        let uid = nix::unistd::getuid();
        let user = nix::unistd::User::from_uid(uid).ok().flatten()?;
        return Some(TestUser {
            name: user.name,
            uid: uid.as_raw(),
            gid: user.gid.as_raw(),
        });
    }
    let found = std::env::var("CLP_TEST_USER")
        .ok()
        .and_then(|name| nix::unistd::User::from_name(&name).ok().flatten())
        .map(|u| TestUser {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        });
    require(
        "a normal user named by CLP_TEST_USER (useradd -m clptest)",
        found,
    )
}

/// What the sandbox tests need: bubblewrap, socat, setpriv, and a user for `mode`.
pub fn ready(mode: As) -> Option<TestUser> {
    require(
        "bubblewrap (apt-get install bubblewrap)",
        common::which("bwrap"),
    )?;
    require("socat (apt-get install socat)", common::which("socat"))?;
    require("setpriv (util-linux)", common::which("setpriv"))?;
    let user = test_user()?;
    if mode == As::Root && !is_root() {
        // The root path needs root; a normal developer run covers the user path.
        eprintln!("SKIPPED: the as-root sandbox tests need root");
        return None;
    }
    Some(user)
}

/// A directory every user can read, holding copies of binaries the test user may not be
/// able to reach where they are (a clone under /root, say).
fn shared_bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // One per checkout and per user: two worktrees testing at once would otherwise
        // replace each other's `clp` (seen: a run picked up another branch's binary), and
        // a normal user cannot reuse root's.
        use sha2::Digest;
        let checkout = std::fs::canonicalize(common::repo()).unwrap();
        let digest = sha2::Sha256::digest(checkout.as_os_str().as_encoded_bytes());
        let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let uid = nix::unistd::getuid().as_raw();
        let dir = std::env::temp_dir().join(format!("clp-it-bin-{tag}-{uid}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    })
}

/// `src` where every user can run it (a clone under /root is out of the test user's
/// reach): hard-linked, or copied across file systems, into one world-readable dir, and
/// replaced when `src` changed, so repeated runs do not fill /tmp.
pub fn shared_copy(src: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dest = shared_bin_dir().join(name);
    let real = std::fs::canonicalize(src).unwrap();
    let meta = std::fs::metadata(&real).unwrap();
    let same = std::fs::metadata(&dest).is_ok_and(|d| {
        (d.dev(), d.ino()) == (meta.dev(), meta.ino())
            || (d.len() == meta.len() && d.modified().unwrap() >= meta.modified().unwrap())
    });
    if !same {
        let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(&real, &tmp).is_err() {
            std::fs::copy(&real, &tmp).unwrap();
        }
        std::fs::rename(&tmp, &dest).unwrap();
    }
    if std::fs::metadata(&dest).unwrap().mode() & 0o005 != 0o005 {
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dest
}

/// Asserts a `clp use box -- -p "say pong"` run: exit 0, `pong`, the profile's bearer
/// token and no `x-api-key` at the backend, nothing changed outside clp's dirs.
pub fn assert_pong(b: &Box, out: &Output, before: &std::collections::BTreeMap<PathBuf, String>) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?}: {stdout}\n{stderr}",
        b.mode
    );
    assert_eq!(stdout.trim(), "pong");
    let reqs = b.backend.requests_to("/v1/messages");
    assert!(!reqs.is_empty());
    assert!(reqs
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer llamacpp")));
    assert!(reqs.iter().all(|r| r.header("x-api-key").is_none()));
    assert_only_changed(
        before,
        &tree(&b.home),
        &[Path::new(".local/state/clp"), Path::new("project")],
    );
}

/// A temporary machine for one test: a home (root's or the test user's), a workspace
/// owned by the test user, a populated main install, secrets, and a backend.
pub struct Box {
    pub mode: As,
    pub user: TestUser,
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    /// The test server, when the box talks to one (not for llama-server boxes).
    pub backend: Backend,
    pub url: String,
    pub clp: PathBuf,
    pub path_var: String,
    pub extra_env: Vec<(String, String)>,
    pub set: Vec<String>,
}

impl Box {
    pub fn new(mode: As, user: TestUser, backend: Backend) -> Box {
        let url = backend.url();
        Box::with_url(mode, user, backend, url)
    }

    /// A box whose profile talks to `url` (another server than `backend`).
    pub fn with_url(mode: As, user: TestUser, backend: Backend, url: String) -> Box {
        let dir = tempfile::Builder::new()
            .prefix("clp-it-b-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = dir.path().join("home");
        let project = home.join("project");
        std::fs::create_dir_all(project.join(".git/hooks")).unwrap();
        std::fs::write(project.join(".git/config"), "[core]\n").unwrap();
        std::fs::write(project.join("README"), "a project\n").unwrap();
        let b = Box {
            clp: shared_copy(&common::clp_bin(), "clp"),
            path_var: "/usr/local/bin:/usr/bin:/bin".into(),
            extra_env: Vec::new(),
            set: Vec::new(),
            mode,
            user,
            dir,
            home,
            project,
            backend,
            url,
        };
        b.write(
            ".ssh/id_rsa",
            "-----BEGIN OPENSSH PRIVATE KEY----- SECRETKEY\n",
        );
        b.write(".aws/credentials", "aws_secret_access_key = AWSSECRET\n");
        b.write(
            ".config/anthropic/profile.json",
            "{\"key\":\"sk-ant-SDKSECRET\"}\n",
        );
        b.write(
            ".claude/.credentials.json",
            "{\"claudeAiOauth\":{\"accessToken\":\"sk-ant-oat01-REALLOGIN\"}}",
        );
        b.write(
            ".claude/settings.json",
            "{\"env\":{\"ANTHROPIC_BASE_URL\":\"http://127.0.0.1:1\"}}",
        );
        b.write(".claude/CLAUDE.md", "# real memory\n");
        b.write(
            ".claude/ide/4242.lock",
            "{\"pid\":1,\"workspaceFolders\":[],\"authToken\":\"ide\"}",
        );
        b.write(
            ".claude.json",
            "{\"hasCompletedOnboarding\":true,\"userID\":\"REALUSER\"}",
        );
        b.profile(
            "box",
            &format!(
                "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\n",
                b.url
            ),
        );
        // Home owned by whoever runs clp; the workspace by the sandbox user.
        let owner = match mode {
            As::Root => (0, 0),
            As::User => (b.user.uid, b.user.gid),
        };
        chown_tree(&b.home, owner);
        chown_tree(&b.project, (b.user.uid, b.user.gid));
        b
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.home.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn profile(&self, name: &str, text: &str) {
        self.write(&format!(".config/clp/profiles/{name}.toml"), text);
    }

    /// `clp ARGS` as the mode's user, with only this home visible and parent secrets set.
    pub fn clp(&self, args: &[&str]) -> Command {
        let mut cmd = match self.mode {
            As::User if is_root() => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={}", self.user.uid),
                    &format!("--regid={}", self.user.gid),
                    "--clear-groups",
                    "--",
                ])
                .arg(&self.clp);
                c
            }
            _ => Command::new(&self.clp),
        };
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("PATH", &self.path_var)
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("GITHUB_TOKEN", "ghp_PARENTSECRET")
            .env("AWS_SECRET_ACCESS_KEY", "AWSPARENTSECRET")
            .env("ANTHROPIC_API_KEY", "sk-ant-api03-PARENTSECRET")
            .env("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/0/bus")
            .envs(self.extra_env.iter().cloned())
            .current_dir(&self.project)
            .stdin(std::process::Stdio::null());
        if self.mode == As::Root {
            cmd.args(["--set", &format!("isolation.user={}", self.user.name)]);
        }
        cmd.args(args);
        cmd
    }

    /// `clp run box -- sh -c SCRIPT`.
    pub fn sh(&self, script: &str) -> Output {
        let mut args = self
            .set
            .iter()
            .flat_map(|s| ["--set", s.as_str()])
            .collect::<Vec<_>>();
        args.extend(["run", "box", "--", "sh", "-c", script]);
        self.clp(&args).output().unwrap()
    }
}

pub fn chown_tree(root: &Path, (uid, gid): (u32, u32)) {
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid)).unwrap();
    }
}

/// A unix socket listening on the host at `path`, reachable by anyone outside.
struct HostSocket {
    path: PathBuf,
    _listener: std::os::unix::net::UnixListener,
}

impl HostSocket {
    fn new(path: PathBuf) -> HostSocket {
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        HostSocket {
            path,
            _listener: listener,
        }
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One attempt: a script that exits 0 when the boundary held (and prints why not).
struct Attempt {
    name: &'static str,
    script: String,
}

/// Runs every attempt; `control` runs them at level A (no boundary), where most must
/// succeed, which shows the attempts can detect an escape at all.
fn escape_suite(mode: As, control: bool) {
    let Some(user) = ready(mode) else { return };
    let backend = Backend::start(Config::default()).unwrap();
    let mut b = Box::new(mode, user, backend);
    if control {
        b.set.push("isolation.level=env".into());
    }
    // An IDE's terminal: its variables must reach Claude Code inside.
    b.extra_env
        .push(("CLAUDE_CODE_SSE_PORT".into(), "41234".into()));
    b.extra_env.push(("TERM_PROGRAM".into(), "vscode".into()));
    let id = format!("{}-{:?}-{control}", std::process::id(), mode);
    let host_tmp = PathBuf::from(format!("/tmp/clp-escape-{id}"));
    let host_shm = PathBuf::from(format!("/dev/shm/clp-escape-{id}"));
    let run_sock = HostSocket::new(PathBuf::from(format!("/run/clp-escape-{id}.sock")));
    let tmp_sock = HostSocket::new(PathBuf::from(format!("/tmp/clp-escape-{id}.sock")));
    // Somewhere outside the workspace the sandbox user could write on the host.
    let outside = b.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    chown_tree(&outside, (b.user.uid, b.user.gid));
    std::os::unix::fs::symlink(&outside, b.project.join("escape-link")).unwrap();
    let other_home = PathBuf::from("/home/clp-escape-other");
    std::fs::create_dir_all(&other_home).unwrap();
    std::fs::write(other_home.join("secret.txt"), "OTHERSECRET").unwrap();
    std::fs::set_permissions(
        other_home.join("secret.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let my_pid = std::process::id();
    let home = b.home.display();
    let port = b.backend.port();

    // Each script exits 0 when the attempt failed, as it must.
    let attempts = vec![
        Attempt { name: "write the real home", script: format!("echo x > {home}/pwned-home; true") },
        Attempt { name: "write a host /tmp path", script: format!("echo x > {}; true", host_tmp.display()) },
        Attempt { name: "write host /dev/shm", script: format!("echo x > {}; true", host_shm.display()) },
        Attempt { name: "write /var/tmp", script: "! touch /var/tmp/clp-escape 2>/dev/null".into() },
        Attempt { name: "write /usr", script: "! touch /usr/clp-escape 2>/dev/null".into() },
        Attempt { name: "write /etc/passwd", script: "! sh -c 'echo x >> /etc/passwd' 2>/dev/null".into() },
        Attempt { name: "read ~/.ssh/id_rsa", script: "! grep -rqs SECRETKEY \"$HOME/.ssh\"".into() },
        Attempt { name: "read ~/.aws", script: "! grep -rqs AWSSECRET \"$HOME/.aws\"".into() },
        Attempt { name: "read ~/.config/anthropic", script: "! grep -rqs SDKSECRET \"$HOME/.config\"".into() },
        Attempt { name: "read the real ~/.claude/.credentials.json", script: format!("! grep -rqs REALLOGIN {home}/.claude \"$HOME/.claude\"") },
        Attempt { name: "read the real ~/.claude.json", script: format!("! grep -qs REALUSER {home}/.claude.json \"$HOME/.claude.json\"") },
        Attempt { name: "read another user's home", script: format!("! grep -rqs OTHERSECRET {}", other_home.display()) },
        Attempt { name: "read /etc/shadow", script: "! cat /etc/shadow >/dev/null 2>&1".into() },
        Attempt { name: "list /root", script: "! test -e /root/.bashrc -a \"$HOME\" != /root".into() },
        Attempt { name: "sudo", script: "! sudo -n true 2>/dev/null".into() },
        Attempt { name: "su", script: "! su -c true root </dev/null 2>/dev/null".into() },
        Attempt { name: "setuid mount", script: "! mount --bind /tmp /mnt 2>/dev/null".into() },
        Attempt { name: "remount / read-write", script: "! mount -o remount,rw / 2>/dev/null && ! touch /clp-escape 2>/dev/null".into() },
        Attempt { name: "no new privileges", script: "grep -q 'NoNewPrivs:[[:space:]]*1' /proc/self/status".into() },
        Attempt { name: "no effective capabilities", script: "grep -q 'CapEff:[[:space:]]*0000000000000000' /proc/self/status".into() },
        Attempt { name: "no bounding capabilities", script: "grep -q 'CapBnd:[[:space:]]*0000000000000000' /proc/self/status || [ \"$(id -u)\" != 0 ]".into() },
        Attempt { name: "not host root", script: "[ \"$(id -u)\" != 0 ]".into() },
        Attempt { name: "write through a workspace symlink", script: "echo x > escape-link/pwned 2>/dev/null; true".into() },
        Attempt { name: "write .git/hooks/pre-commit", script: "! sh -c 'echo evil > .git/hooks/pre-commit' 2>/dev/null".into() },
        Attempt { name: "write .git/config", script: "! sh -c 'echo evil >> .git/config' 2>/dev/null".into() },
        Attempt { name: "connect to a host socket under /run", script: format!("! socat -u OPEN:/dev/null UNIX-CONNECT:{} 2>/dev/null", run_sock.path.display()) },
        Attempt { name: "connect to a host socket under /tmp", script: format!("! socat -u OPEN:/dev/null UNIX-CONNECT:{} 2>/dev/null", tmp_sock.path.display()) },
        Attempt { name: "reach docker.sock", script: "! test -S /var/run/docker.sock && ! test -S /run/docker.sock".into() },
        Attempt { name: "reach the D-Bus system bus", script: "! test -S /run/dbus/system_bus_socket".into() },
        Attempt { name: "reach the session bus and XDG_RUNTIME_DIR", script: "! test -e /run/user && [ -z \"$DBUS_SESSION_BUS_ADDRESS$XDG_RUNTIME_DIR$SSH_AUTH_SOCK\" ]".into() },
        Attempt { name: "see host processes", script: format!("! test -e /proc/{my_pid} && [ $(ls /proc | grep -c '^[0-9]') -lt 20 ]") },
        Attempt { name: "signal a host process", script: format!("! kill -0 {my_pid} 2>/dev/null") },
        Attempt { name: "find parent-env secrets", script: "! env | grep -qE 'PARENTSECRET|ghp_|AWSPARENT'".into() },
    ];
    assert!(attempts.len() >= 25);

    let before = tree(&b.home);
    let mut failures = Vec::new();
    for a in &attempts {
        let out = b.sh(&a.script);
        let (stdout, stderr) = text(&out);
        if !out.status.success() {
            failures.push(format!(
                "{}: exit {:?}\n{stdout}{stderr}",
                a.name,
                out.status.code()
            ));
        }
    }
    // Host-side evidence for the writes.
    for (what, path) in [
        ("the real home", b.home.join("pwned-home")),
        ("host /tmp", host_tmp.clone()),
        ("host /dev/shm", host_shm.clone()),
        ("the symlink target", outside.join("pwned")),
    ] {
        if path.exists() {
            failures.push(format!("a write reached {what}: {}", path.display()));
        }
    }
    let hook = std::fs::read_to_string(b.project.join(".git/config")).unwrap();
    if hook.contains("evil") || b.project.join(".git/hooks/pre-commit").exists() {
        failures.push("a .git file was changed".into());
    }
    let after = tree(&b.home);
    let _ = std::fs::remove_dir_all(&other_home);
    let _ = std::fs::remove_file(&host_tmp);
    let _ = std::fs::remove_file(&host_shm);
    if control {
        assert!(
            failures.len() >= 15,
            "only {} of {} attempts escape without a boundary:\n{}",
            failures.len(),
            attempts.len(),
            failures.join("\n")
        );
        return;
    }
    assert_only_changed(
        &before,
        &after,
        &[Path::new(".local/state/clp"), Path::new("project")],
    );
    assert!(
        failures.is_empty(),
        "{mode:?}: escapes:\n{}",
        failures.join("\n")
    );

    // The allowed side.
    let out = b.sh(&format!(
        "set -e; echo ok > inside.txt; touch \"$CLAUDE_CONFIG_DIR/x\" \"$TMPDIR/y\" \"$HOME/z\"; \
         printf 'GET /health HTTP/1.0\\r\\n\\r\\n' | socat -t2 - TCP:127.0.0.1:{port} | head -1; \
         getent hosts localhost >/dev/null; cat /etc/resolv.conf >/dev/null; \
         grep -q workspaceFolders \"$CLAUDE_CONFIG_DIR/ide/4242.lock\"; \
         if touch \"$CLAUDE_CONFIG_DIR/ide/new.lock\" 2>/dev/null; then echo ide-writable; exit 1; fi; \
         test \"$CLAUDE_CODE_SSE_PORT\" = 41234; test \"$TERM_PROGRAM\" = vscode; echo done"
    ));
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{mode:?}: allowed side failed:\n{stdout}{stderr}"
    );
    assert!(
        stdout.contains("HTTP/1.1 200"),
        "{mode:?}: backend unreachable:\n{stdout}{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(b.project.join("inside.txt")).unwrap(),
        "ok\n"
    );
}

#[test]
fn escape_suite_as_root() {
    escape_suite(As::Root, false);
}

#[test]
fn escape_suite_as_user() {
    escape_suite(As::User, false);
}

#[test]
fn escape_suite_detects_escapes_without_a_boundary() {
    escape_suite(As::User, true);
}

/// The OAuth profile at level B: its own login (`~/.claude`, `~/.claude.json`) usable and
/// writable, everything else as for any sandboxed profile.
#[test]
fn oauth_profile_in_the_sandbox_keeps_its_login() {
    let Some(user) = ready(As::User) else { return };
    let backend = Backend::start(Config::default()).unwrap();
    let b = Box::new(As::User, user, backend);
    let out = b
        .clp(&[
            "--set", "isolation.level=sandbox",
            "--set", "workspace.path=~/project",
            "run", "oauth", "--", "sh", "-c",
            "grep -q REALLOGIN \"$HOME/.claude/.credentials.json\" && grep -q REALUSER \"$HOME/.claude.json\" \
             && echo refreshed > \"$HOME/.claude/.credentials.json.new\" \
             && ! grep -rqs SECRETKEY \"$HOME/.ssh\" && [ -z \"$ANTHROPIC_API_KEY\" ] && echo ok",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "{stdout}{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(b.home.join(".claude/.credentials.json.new")).unwrap(),
        "refreshed\n"
    );
}

/// The real Claude Code inside B: the model's Bash call (approved at the prompt, since
/// Bash always asks) writes inside the workspace, fails outside it, and shows that
/// Claude Code's own sandbox was in force.
fn real_client_in_tmux(mode: As) {
    let Some(user) = ready(mode) else { return };
    let Some(claude) = common::claude() else {
        return;
    };
    require("tmux (apt-get install tmux)", common::which("tmux"));
    let backend = Backend::start(Config {
        script: Some(ToolScript::Bash {
            command: "echo inside > ok.txt; echo outside > /tmp/outside.txt; echo \"runtime=$SANDBOX_RUNTIME\"".into(),
        }),
        ..Config::default()
    })
    .unwrap();
    let mut b = Box::new(mode, user, backend);
    let claude = shared_copy(&claude, "claude");
    b.path_var = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        claude.parent().unwrap().display()
    );
    b.profile(
        "box",
        &format!(
            "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\ntrust = true\n",
            b.backend.url()
        ),
    );
    let before = tree(&b.home);
    let t = Tmux::start(&b, &[]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let prompt = t.run_bash_tool();
        assert!(prompt.contains("echo inside > ok.txt"), "{prompt}");
        // `runtime=` alone also matches the command's echo on screen: wait for the
        // result, then for the inner sandbox's marker in it.
        t.wait_for("TOOL_RESULT:");
        let done = t.wait_for("runtime=1");
        // bash says `/tmp/outside.txt: Read-only file system`, zsh (Claude Code's pick
        // when it is installed) `read-only file system: /tmp/outside.txt`.
        let said = done.to_lowercase();
        assert!(
            said.contains("read-only file system") && said.contains("/tmp/outside.txt"),
            "{mode:?}: {done}"
        );
        assert!(
            done.contains("runtime=1"),
            "{mode:?}: the inner sandbox was not in force:\n{done}"
        );
        // A resize reaches the sandboxed TUI (it shares clp's terminal).
        t.tmux(&["resize-window", "-t", &t.session, "-x", "100", "-y", "40"]);
        let rule = "─".repeat(100);
        let redrawn = t.wait_for(&rule);
        assert!(
            !redrawn.contains(&"─".repeat(101)),
            "{mode:?}: not redrawn at 100 columns"
        );
        t.quit();
    }));
    drop(t);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert_eq!(
        std::fs::read_to_string(b.project.join("ok.txt")).unwrap(),
        "inside\n"
    );
    assert!(!Path::new("/tmp/outside.txt").exists());
    let after = tree(&b.home);
    assert_only_changed(
        &before,
        &after,
        &[Path::new(".local/state/clp"), Path::new("project")],
    );
}

/// The real Claude Code in a tmux pane: `clp use box`, a prompt typed, the scripted Bash
/// call approved. Its tmux server (of its own) is killed on drop.
pub struct Tmux {
    pub session: String,
    mode: As,
    server: common::TmuxServer,
}

impl Tmux {
    /// Starts `clp [sets] use box` in a new tmux session, as the box's mode user.
    pub fn start(b: &Box, sets: &[&str]) -> Tmux {
        Tmux::start_with(b, sets, &[])
    }

    /// Starts `clp [sets] use box -- CLAUDE_ARGS` in a new tmux session, as the box's
    /// mode user.
    pub fn start_with(b: &Box, sets: &[&str], claude_args: &[&str]) -> Tmux {
        let mut args: Vec<&str> = sets.iter().flat_map(|s| ["--set", s]).collect();
        args.extend(["use", "box"]);
        if !claude_args.is_empty() {
            args.push("--");
            args.extend(claude_args);
        }
        Tmux::start_raw(b, &args)
    }

    /// Starts `clp ARGS` in a new tmux session, as the box's mode user, in the box's
    /// workspace.
    pub fn start_raw(b: &Box, args: &[&str]) -> Tmux {
        let session = format!(
            "clp-it-{}-{:?}-{}",
            std::process::id(),
            b.mode,
            b.dir.path().file_name().unwrap().to_string_lossy()
        );
        let mut cmd = b.clp(args);
        cmd.env("TERM", "xterm-256color");
        let script = b.dir.path().join("launch.sh");
        let mut line = String::from("exec env -i");
        for (k, v) in cmd.get_envs() {
            line.push_str(&format!(
                " {}={}",
                k.to_string_lossy(),
                shell_quote(&v.unwrap().to_string_lossy())
            ));
        }
        line.push_str(&format!(
            " {}",
            shell_quote(&cmd.get_program().to_string_lossy())
        ));
        for a in cmd.get_args() {
            line.push_str(&format!(" {}", shell_quote(&a.to_string_lossy())));
        }
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncd {}\n{line}\n",
                shell_quote(&b.project.display().to_string())
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = Tmux {
            session,
            mode: b.mode,
            server: common::TmuxServer::new(b.dir.path().join(format!("tmux-{}.sock", {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            }))),
        };
        t.tmux(&[
            "new-session",
            "-d",
            "-s",
            &t.session,
            "-x",
            "160",
            "-y",
            "50",
            &format!("{}; echo EXITED rc=$?; sleep 120", script.display()),
        ]);
        t
    }

    pub fn tmux(&self, args: &[&str]) -> Output {
        self.server.run(args)
    }

    pub fn screen(&self) -> String {
        text(&self.tmux(&["capture-pane", "-p", "-t", &self.session])).0
    }

    /// Waits (up to a minute) until `needle` is on screen, and returns the screen.
    pub fn wait_for(&self, needle: &str) -> String {
        for _ in 0..240 {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!(
            "{:?}: `{needle}` never appeared:\n{}",
            self.mode,
            self.screen()
        );
    }

    /// Types a prompt, waits for the Bash approval (Bash always asks), approves it, and
    /// returns the screen that asked.
    pub fn run_bash_tool(&self) -> String {
        self.wait_for("❯");
        std::thread::sleep(std::time::Duration::from_millis(500));
        self.tmux(&["send-keys", "-t", &self.session, "-l", "go"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        self.tmux(&["send-keys", "-t", &self.session, "Enter"]);
        let prompt = self.wait_for("Do you want to proceed?");
        let mut answered = false;
        for _ in 0..10 {
            std::thread::sleep(std::time::Duration::from_millis(700));
            if !self.screen().contains("Do you want to proceed?") {
                answered = true;
                break;
            }
            self.tmux(&["send-keys", "-t", &self.session, "1"]);
        }
        assert!(
            answered,
            "{:?}: the approval was not taken:\n{}",
            self.mode,
            self.screen()
        );
        prompt
    }

    /// Ctrl-C twice: Claude Code exits 0.
    pub fn quit(&self) {
        self.tmux(&["send-keys", "-t", &self.session, "C-c"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        self.tmux(&["send-keys", "-t", &self.session, "C-c"]);
        self.wait_for("EXITED rc=0");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-session", "-t", &self.session]);
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn real_client_inside_the_sandbox_as_root() {
    real_client_in_tmux(As::Root);
}

#[test]
fn real_client_inside_the_sandbox_as_user() {
    real_client_in_tmux(As::User);
}

/// A box whose PATH finds the real Claude Code (copied where the test user can run it),
/// talking to `url` or else to `backend`; `None` when a component is missing.
pub fn box_with_claude(mode: As, backend: Backend, url: Option<String>) -> Option<Box> {
    let user = ready(mode)?;
    let claude = shared_copy(&common::claude()?, "claude");
    let url = url.unwrap_or_else(|| backend.url());
    let mut b = Box::with_url(mode, user, backend, url);
    b.path_var = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        claude.parent().unwrap().display()
    );
    Some(b)
}

/// `clp use local-glm -- -p` end to end: the answer comes back through both sandboxes.
fn print_mode(mode: As) {
    let Some(b) = box_with_claude(mode, Backend::start(Config::default()).unwrap(), None) else {
        return;
    };
    let before = tree(&b.home);
    let out = b
        .clp(&["use", "box", "--", "-p", "say pong"])
        .output()
        .unwrap();
    assert_pong(&b, &out, &before);
}

#[test]
fn print_mode_through_the_sandbox_as_root() {
    print_mode(As::Root);
}

#[test]
fn print_mode_through_the_sandbox_as_user() {
    print_mode(As::User);
}

/// `clp doctor` checks the backend and Claude Code's nested sandbox from inside the
/// boundary, and fails with exit 2 when the backend is down.
fn doctor(mode: As) {
    let Some(mut b) = box_with_claude(mode, Backend::start(Config::default()).unwrap(), None)
    else {
        return;
    };
    let out = b.clp(&["doctor", "box"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{mode:?}: {stdout}{stderr}");
    assert!(stdout.contains("nested bubblewrap works"), "{stdout}");
    assert!(
        stdout.contains("ready (from inside the sandbox)"),
        "{stdout}"
    );
    assert!(stdout.contains("backend serves `glm-flash-q4`"), "{stdout}");

    b.backend.stop();
    let out = b.clp(&["doctor", "box"]).output().unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("unreachable (from inside the sandbox)"),
        "{stdout}"
    );
}

#[test]
fn doctor_looks_from_inside_the_sandbox_as_root() {
    doctor(As::Root);
}

#[test]
fn doctor_looks_from_inside_the_sandbox_as_user() {
    doctor(As::User);
}
