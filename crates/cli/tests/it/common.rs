//! The fixture helper: a temporary HOME with a project dir, a `clp` command that sees
//! only that HOME, and insta filters that hide the temporary paths.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// The shipped profiles, sorted.
pub const BUILTINS: [&str; 6] = [
    "local-container",
    "local-env",
    "local-glm",
    "local-gpt-oss",
    "local-qwen",
    "oauth",
];

/// `tmux -S SOCKET ARGS`: a tmux server of the test's own, never the default one.
pub fn tmux(socket: &Path, args: &[&str]) -> Output {
    Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

/// The `clp` binary under test.
pub fn clp_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clp"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fixture file under `crates/cli/tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub use clp_test_backend::parts::{claude, require, which};

/// A temporary HOME with a project directory, isolated from the real user's files.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    pub path_var: String,
    pub extra_env: BTreeMap<String, String>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("clp-it-")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        let project = home.join("project");
        std::fs::create_dir_all(&project).unwrap();
        Env {
            path_var: std::env::var("PATH").unwrap_or_default(),
            dir,
            home,
            project,
            extra_env: BTreeMap::new(),
        }
    }

    /// An env whose PATH finds the real Claude Code at `claude`, with a user profile `e2e`
    /// that extends `base`, adds `extra` and talks to `url`.
    pub fn with_claude(claude: &Path, base: &str, url: &str, extra: &str) -> Env {
        let mut env = Env::new();
        env.path_var = format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            claude.parent().unwrap().display()
        );
        env.profile(
            "e2e",
            &format!("extends = \"{base}\"\n{extra}\n[backend]\nurl = \"{url}\"\n"),
        );
        env
    }

    /// `clp` with only this HOME visible: a clean environment, cwd in the project.
    pub fn clp(&self) -> Command {
        let mut cmd = Command::new(clp_bin());
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("PATH", &self.path_var)
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .envs(&self.extra_env)
            .current_dir(&self.project)
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs `clp ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.clp().args(args).output().unwrap()
    }

    /// Writes a file under HOME, creating parents.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.home.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes a user profile into `~/.config/clp/profiles/NAME.toml`.
    pub fn profile(&self, name: &str, text: &str) -> PathBuf {
        self.write(&format!(".config/clp/profiles/{name}.toml"), text)
    }

    /// Replaces this env's temporary paths with stable names for snapshots.
    pub fn scrub(&self, text: &str) -> String {
        let tmp = self.dir.path().display().to_string();
        text.replace(&self.home.display().to_string(), "[HOME]")
            .replace(&tmp, "[TMP]")
            .replace(&repo_display(), "[REPO]")
    }

    /// A populated main install: `~/.claude/` (credentials, settings with another base
    /// URL, CLAUDE.md, ide/) and `~/.claude.json`.
    pub fn populate_main_install(&self) {
        self.write(
            ".claude/.credentials.json",
            r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-real","refreshToken":"r"}}"#,
        );
        self.write(
            ".claude/settings.json",
            r#"{"env":{"ANTHROPIC_BASE_URL":"http://127.0.0.1:1"},"model":"opus"}"#,
        );
        self.write(".claude/CLAUDE.md", "# my real memory\n");
        self.write(
            ".claude/ide/4242.lock",
            r#"{"pid":1,"workspaceFolders":[]}"#,
        );
        self.write(
            ".claude.json",
            r#"{"hasCompletedOnboarding":true,"userID":"real"}"#,
        );
    }

    /// Every file under HOME with its hash (symlinks by target), for before/after checks.
    pub fn snapshot_tree(&self) -> BTreeMap<PathBuf, String> {
        tree(&self.home)
    }
}

fn repo_display() -> String {
    std::fs::canonicalize(repo()).unwrap().display().to_string()
}

/// Every entry under `root` with a hash of its contents (or its link target).
pub fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root).unwrap().to_owned();
        let ft = entry.file_type();
        let digest = if ft.is_symlink() {
            format!(
                "link:{}",
                std::fs::read_link(entry.path()).unwrap().display()
            )
        } else if ft.is_file() {
            format!("{:x}", Sha256::digest(std::fs::read(entry.path()).unwrap()))
        } else {
            "dir".into()
        };
        out.insert(rel, digest);
    }
    out
}

/// Asserts that between `before` and `after` nothing changed outside `allowed` prefixes
/// (relative to the same root), and lists what did.
pub fn assert_only_changed(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
    allowed: &[&Path],
) {
    let mut bad = Vec::new();
    // The directories leading to an allowed dir may be created too.
    let leads_to =
        |path: &Path, digest: &str| digest == "dir" && allowed.iter().any(|a| a.starts_with(path));
    for (path, digest) in after {
        if before.get(path) != Some(digest)
            && !allowed.iter().any(|a| path.starts_with(a))
            && !leads_to(path, digest)
        {
            bad.push(format!("changed or added: {}", path.display()));
        }
    }
    for path in before.keys() {
        if !after.contains_key(path) && !allowed.iter().any(|a| path.starts_with(a)) {
            bad.push(format!("removed: {}", path.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "outside the allowed dirs:\n{}",
        bad.join("\n")
    );
}

/// stdout and stderr of an output as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A child process a test started, in a process group of its own, killed with its whole
/// group when the guard is dropped: pass or fail (a panicking test drops it too), nothing
/// it started outlives the test. `wait_with_output` waits, then kills what the child left
/// behind in its group.
pub struct Guarded {
    child: Option<std::process::Child>,
}

impl Guarded {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> Guarded {
        use std::os::unix::process::CommandExt;
        let child = cmd.process_group(0).spawn().unwrap();
        Guarded { child: Some(child) }
    }

    /// Waits for the child and collects its output; anything left in its group is killed.
    pub fn wait_with_output(mut self) -> Output {
        let child = self.child.take().unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        kill_group(pid);
        out
    }
}

impl std::ops::Deref for Guarded {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.child.as_ref().unwrap()
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.child.as_mut().unwrap()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGKILL to the process group `pgid` (gone already: nothing to do).
pub fn kill_group(pgid: u32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A tmux server of the test's own (a socket in the test's temporary dir, never the
/// default server a developer may be using), killed with everything in it on drop.
pub struct TmuxServer {
    pub socket: PathBuf,
}

impl TmuxServer {
    /// A server at `socket` (started by the first `new-session`).
    pub fn new(socket: PathBuf) -> TmuxServer {
        TmuxServer { socket }
    }

    /// Runs `tmux ARGS` against this server.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}
