//! The IDE at every level, with the real Claude Code and a protocol-faithful IDE stand-in
//! (`clp_test_backend::ide`: a WebSocket MCP server with its lock file in the main
//! install's `~/.claude/ide`), as root and as a normal user:
//!
//! - launched from the IDE's terminal (`CLAUDE_CODE_SSE_PORT`, `TERM_PROGRAM=vscode`),
//!   Claude Code connects with the IDE's token and a `getDiagnostics` call the model asks
//!   for reaches the IDE, and its answer reaches the model (levels A, B, C);
//! - an IDE started after the session is found by `/ide` (B, C);
//! - the real `~/.claude/ide` is byte-identical after every session, the live lock file
//!   still there (the `oauth` profile's writable `~/.claude` included);
//! - however the client ends (terminal closed, SIGTERM, SIGKILL of clp), no process,
//!   container, relay or proxy of the session is left;
//! - a control: the real Claude Code in a bare pid namespace with the lock dir writable
//!   deletes the IDE's live lock file (what the view prevents).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clp_test_backend::ide::{Ide, IdeConfig};
use clp_test_backend::{Backend, Config, ToolScript};
use serde_json::json;

use crate::common::{self, text};
use crate::container;
use crate::sandbox::{box_with_claude, As, Box, Tmux};

const TOOL: &str = "mcp__ide__getDiagnostics";
const MARKER: &str = "STAND-IN-DIAGNOSTIC";
/// How long a step may take before the test gives up (a hang guard, not a timing check).
const WAIT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    A,
    B,
    C,
}

/// A box at `level` whose backend asks for the IDE's `getDiagnostics`, its workspace
/// trusted, MCP tools offered directly (not behind tool search). `None` when a component
/// is missing.
fn ide_box(level: Level, mode: As, extra: &str) -> Option<Box> {
    let backend = Backend::start(Config {
        script: Some(ToolScript::Tool {
            name: TOOL.into(),
            input: json!({}),
        }),
        ..Config::default()
    })
    .unwrap();
    let (b, base) = match level {
        Level::A => (box_with_claude(mode, backend, None)?, "local-env"),
        Level::B => (box_with_claude(mode, backend, None)?, "local-glm"),
        Level::C => {
            let user = container::ready(mode, container::IMAGE)?;
            let url = backend.url();
            (
                container::container_box_at(mode, user, backend, &url, false, ""),
                "local-container",
            )
        }
    };
    // The box's own lock file stands for no IDE (its pid 1 is not the user's): plain
    // Claude Code removes such a stale one at level A. Only live IDEs here.
    std::fs::remove_file(b.home.join(".claude/ide/4242.lock")).unwrap();
    b.profile(
        "box",
        &format!(
            "extends = \"{base}\"\n[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\n\
             trust = true\n[env]\nENABLE_TOOL_SEARCH = \"false\"\n\
             CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL = \"1\"\n{extra}",
            b.url
        ),
    );
    Some(b)
}

/// The stand-in IDE for `b`'s workspace, its lock file in the box's `~/.claude/ide`,
/// as the IDE of whoever runs clp: the lock file theirs, its pid one of their processes
/// (alive on the host, absent from a session's pid namespace).
struct RunningIde {
    ide: Ide,
    /// The process standing for the editor when it must run as the test user.
    editor: Option<std::process::Child>,
}

impl std::ops::Deref for RunningIde {
    type Target = Ide;
    fn deref(&self) -> &Ide {
        &self.ide
    }
}

impl Drop for RunningIde {
    fn drop(&mut self) {
        if let Some(c) = &mut self.editor {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_ide(b: &Box) -> RunningIde {
    let as_user = b.mode == As::User && nix::unistd::getuid().is_root();
    let editor = as_user.then(|| {
        Command::new("setpriv")
            .args([
                &format!("--reuid={}", b.user.uid),
                &format!("--regid={}", b.user.gid),
                "--clear-groups",
                "--",
                "sleep",
                "3600",
            ])
            .spawn()
            .unwrap()
    });
    let pid = editor.as_ref().map_or(std::process::id(), |c| c.id());
    let ide = Ide::start(IdeConfig {
        workspace_folders: vec![b.project.display().to_string()],
        diagnostics: json!([{
            "uri": format!("file://{}/main.rs", b.project.display()),
            "diagnostics": [{
                "message": format!("{MARKER} unused variable `x`"),
                "severity": "Warning",
                "range": {"start": {"line": 2, "character": 8}, "end": {"line": 2, "character": 9}},
                "source": "rustc",
            }],
        }]),
        pid: Some(pid),
        ..IdeConfig::new(b.home.join(".claude/ide"))
    })
    .unwrap();
    if as_user {
        for p in [b.home.join(".claude/ide"), ide.lock_path().to_owned()] {
            std::os::unix::fs::chown(&p, Some(b.user.uid), Some(b.user.gid)).unwrap();
        }
    }
    RunningIde { ide, editor }
}

/// Every file in `dir` with its bytes and mode.
fn files(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (
                    std::fs::read(e.path()).unwrap_or_default(),
                    meta.permissions().mode(),
                ),
            )
        })
        .collect()
}

/// Polls `f` until it gives a value, or gives up after [`WAIT`].
fn wait_until<T>(f: impl FnMut() -> Option<T>) -> Option<T> {
    clp_test_backend::parts::poll(WAIT, Duration::from_millis(200), f)
}

fn connected(ide: &RunningIde) -> bool {
    ide.received().iter().any(|m| m["method"] == "tools/list")
}

/// Types `prompt` into the session's input line, waits until it shows there (keys sent
/// while a dialog closes are lost: then it types again), and presses Enter.
fn type_line(t: &Tmux, prompt: &str) {
    for _ in 0..10 {
        t.tmux(&["send-keys", "-t", &t.session, "-l", prompt]);
        let shown = wait_until_short(|| {
            t.screen()
                .lines()
                .any(|l| l.starts_with('❯') && l.trim_end().ends_with(prompt))
                .then_some(())
        });
        if shown.is_some() {
            t.tmux(&["send-keys", "-t", &t.session, "Enter"]);
            return;
        }
        t.tmux(&["send-keys", "-t", &t.session, "C-u"]);
    }
    panic!("`{prompt}` never reached the input line:\n{}", t.screen());
}

/// The model asks for the IDE's diagnostics: the call reaches the IDE (authorized with
/// its token) and the answer reaches the model.
fn diagnostics_round_trip(b: &Box, t: &Tmux, ide: &RunningIde, label: &str) {
    let ok = wait_until(|| connected(ide).then_some(()));
    assert!(
        ok.is_some(),
        "{label}: Claude Code did not connect to the IDE:\n{}",
        t.screen()
    );
    assert!(
        ide.handshakes().iter().all(|h| h.authorized) && ide.rejected() == 0,
        "{label}: a connection without the IDE's token"
    );
    t.wait_for("❯");
    type_line(t, "check");
    let called = wait_until(|| {
        ide.tool_calls()
            .iter()
            .any(|(name, _)| name == "getDiagnostics")
            .then_some(())
    });
    assert!(
        called.is_some(),
        "{label}: the tool call never reached the IDE:\n{}",
        t.screen()
    );
    let answered = wait_until(|| {
        b.backend
            .requests_to("/v1/messages")
            .iter()
            .filter_map(|r| r.json.as_ref())
            .any(|body| body.to_string().contains(MARKER))
            .then_some(())
    });
    assert!(
        answered.is_some(),
        "{label}: the IDE's answer never reached the model:\n{}",
        t.screen()
    );
    t.wait_for("TOOL_RESULT:");
}

/// The pid of the process in the session's tmux pane: clp (the launch script execs it).
fn pane_pid(t: &Tmux) -> i32 {
    let out = t.tmux(&["display-message", "-p", "-t", &t.session, "#{pane_pid}"]);
    text(&out).0.trim().parse().unwrap()
}

/// A process on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: i32,
    ppid: i32,
    /// Start time (clock ticks after boot): with the pid, one process and no other.
    start: u64,
    comm: String,
    cwd: PathBuf,
    cmdline: String,
}

/// Every live (not zombie) process.
fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split at the last `)`.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c).to_owned();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        out.push(Proc {
            pid,
            ppid: fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0),
            start: fields.get(19).and_then(|p| p.parse().ok()).unwrap_or(0),
            comm,
            cwd: std::fs::read_link(e.path().join("cwd")).unwrap_or_default(),
            cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
        });
    }
    out
}

/// Whether `pid` is `root` or below it.
fn descends(pid: i32, root: i32) -> bool {
    let all = processes();
    let mut p = pid;
    for _ in 0..64 {
        if p == root {
            return true;
        }
        match all.iter().find(|q| q.pid == p) {
            Some(q) if q.ppid > 1 => p = q.ppid,
            _ => return false,
        }
    }
    false
}

/// The processes of clp's session: clp and its descendants, and anything working in the
/// box (a container's processes descend from the engine's monitor, not from clp).
fn session_processes(clp: i32, b: &Box) -> Vec<Proc> {
    let me = std::process::id() as i32;
    processes()
        .into_iter()
        .filter(|p| p.pid != me && (descends(p.pid, clp) || p.cwd.starts_with(b.dir.path())))
        .collect()
}

/// Which of `then` still run (same pid, same start), and any new process working in the
/// box.
fn still_running(then: &[Proc], b: &Box) -> Vec<Proc> {
    let me = std::process::id() as i32;
    processes()
        .into_iter()
        .filter(|p| {
            p.pid != me
                && (then.iter().any(|q| q.pid == p.pid && q.start == p.start)
                    || p.cwd.starts_with(b.dir.path()))
        })
        .collect()
}

/// `podman ARGS` as the engine of the box's mode: rootful as root, rootless as the user.
fn podman(b: &Box, args: &[&str]) -> std::process::Output {
    match b.mode {
        As::Root => Command::new("podman").args(args).output().unwrap(),
        As::User => container::podman_as(&b.user, args),
    }
}

/// Whether the engine still lists the session's container (`clp-box-<clp's pid>`).
fn container_listed(b: &Box, clp: i32) -> bool {
    let name = format!("clp-box-{clp}");
    let filter = format!("name={name}");
    let out = podman(
        b,
        &["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
    );
    text(&out).0.lines().any(|l| l.trim() == name)
}

fn early(level: Level, mode: As) {
    let Some(b) = ide_box(level, mode, "") else {
        return;
    };
    let ide = start_ide(&b);
    let real = b.home.join(".claude/ide");
    let before = files(&real);
    assert_eq!(before.len(), 1, "the IDE's lock file");
    let label = format!("{level:?} {mode:?}");
    let mut b = b;
    b.extra_env.extend([
        ("CLAUDE_CODE_SSE_PORT".into(), ide.port().to_string()),
        ("TERM_PROGRAM".into(), "vscode".into()),
    ]);
    let t = Tmux::start_with(&b, &[], &["--allowedTools", TOOL]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> i32 {
        diagnostics_round_trip(&b, &t, &ide, &label);
        // clp's status line, rendered by Claude Code from inside the boundary.
        let letter = match level {
            Level::A => "A",
            Level::B => "B",
            Level::C => "C",
        };
        t.wait_for(&format!("clp:box [{letter}"));
        let clp = clp_pid(&t);
        if level != Level::A {
            let view = session_dir(&b, clp).join("ide");
            let lock = view.join(format!("{}.lock", ide.port()));
            check_view(&b, &lock, &label);
        }
        t.quit();
        clp
    }));
    drop(t);
    let clp = match result {
        Ok(clp) => clp,
        Err(e) => std::panic::resume_unwind(e),
    };
    assert_eq!(
        files(&real),
        before,
        "{label}: the real ~/.claude/ide changed"
    );
    assert!(ide.lock_path().exists());
    assert!(
        !session_dir(&b, clp).exists(),
        "{label}: the session dir outlived the session"
    );
}

/// The session's view of the IDE's lock file: the session user's alone, the pid 1, the
/// rest (the token) as the IDE wrote it.
fn check_view(b: &Box, lock: &Path, label: &str) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(lock)
        .unwrap_or_else(|e| panic!("{label}: no view at {}: {e}", lock.display()));
    assert_eq!(meta.uid(), b.user.uid, "{label}: the view's owner");
    assert_eq!(meta.mode() & 0o777, 0o600, "{label}: the view's mode");
    let dir = std::fs::metadata(lock.parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700, "{label}: the view dir's mode");
    let seen: serde_json::Value = serde_json::from_slice(&std::fs::read(lock).unwrap()).unwrap();
    assert_eq!(seen["pid"], 1, "{label}: {seen}");
}

/// clp's pid in the session's pane (the launch script's process below the pane's
/// shell: `clp`, or at level A, which execs, `claude`).
fn clp_pid(t: &Tmux) -> i32 {
    let pane = pane_pid(t);
    let found = wait_until(|| {
        let all = processes();
        let top = |p: &Proc| {
            (p.comm == "clp" || p.comm == "claude")
                && all
                    .iter()
                    .find(|q| q.pid == p.ppid)
                    .is_some_and(|q| q.comm != "clp" && descends(q.pid, pane))
        };
        all.iter().find(|p| top(p)).map(|p| p.pid)
    });
    found.unwrap_or_else(|| panic!("no clp under the pane {pane}"))
}

/// The session dir of clp's session `clp` for the box's profile.
fn session_dir(b: &Box, clp: i32) -> PathBuf {
    let runtime = match b.mode {
        As::Root => PathBuf::from("/run/clp"),
        As::User => PathBuf::from(format!("/dev/shm/clp-{}", b.user.uid)),
    };
    runtime.join("box").join(clp.to_string())
}

#[test]
fn ide_connects_and_answers_at_level_a_as_root() {
    early(Level::A, As::Root);
}

#[test]
fn ide_connects_and_answers_at_level_a_as_user() {
    early(Level::A, As::User);
}

#[test]
fn ide_connects_and_answers_at_level_b_as_root() {
    early(Level::B, As::Root);
}

#[test]
fn ide_connects_and_answers_at_level_b_as_user() {
    early(Level::B, As::User);
}

#[test]
fn ide_connects_and_answers_at_level_c_as_root() {
    early(Level::C, As::Root);
}

#[test]
fn ide_connects_and_answers_at_level_c_as_user() {
    early(Level::C, As::User);
}

/// The IDE starts after the session (no `~/.claude/ide` at launch): `/ide` lists it and
/// connects.
fn late(level: Level, mode: As) {
    let Some(mut b) = ide_box(level, mode, "") else {
        return;
    };
    std::fs::remove_dir_all(b.home.join(".claude/ide")).unwrap();
    b.extra_env.push(("TERM_PROGRAM".into(), "vscode".into()));
    let label = format!("late {level:?} {mode:?}");
    let t = Tmux::start_with(&b, &[], &["--allowedTools", TOOL]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.wait_for("❯");
        let ide = start_ide(&b);
        let (mut listed, mut picked) = (false, false);
        for _ in 0..20 {
            type_line(&t, "/ide");
            listed = wait_until_short(|| t.screen().contains("Visual Studio Code").then_some(()))
                .is_some();
            if !listed {
                t.tmux(&["send-keys", "-t", &t.session, "Escape"]);
                continue;
            }
            // Under load the dialog can still be redrawing when Enter arrives, and then
            // says "No IDE selected": pick again, as a user would.
            t.tmux(&["send-keys", "-t", &t.session, "Enter"]);
            picked = wait_until_short(|| connected(&ide).then_some(())).is_some();
            if picked {
                break;
            }
        }
        assert!(
            listed,
            "{label}: /ide never listed the IDE:\n{}",
            t.screen()
        );
        assert!(
            picked,
            "{label}: picking the IDE never connected:\n{}",
            t.screen()
        );
        diagnostics_round_trip(&b, &t, &ide, &label);
        t.quit();
    }));
    drop(t);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Polls `f` for a few seconds (the view is refreshed every half second).
fn wait_until_short<T>(f: impl FnMut() -> Option<T>) -> Option<T> {
    clp_test_backend::parts::poll(Duration::from_secs(5), Duration::from_millis(200), f)
}

#[test]
fn an_ide_started_later_is_found_by_slash_ide_at_level_b_as_root() {
    late(Level::B, As::Root);
}

#[test]
fn an_ide_started_later_is_found_by_slash_ide_at_level_b_as_user() {
    late(Level::B, As::User);
}

#[test]
fn an_ide_started_later_is_found_by_slash_ide_at_level_c_as_root() {
    late(Level::C, As::Root);
}

#[test]
fn an_ide_started_later_is_found_by_slash_ide_at_level_c_as_user() {
    late(Level::C, As::User);
}

/// How the client is ended.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The terminal closes (tmux kills the pane: SIGHUP).
    Hangup,
    Term,
    Kill,
}

/// Ends a running session `how` and checks that nothing of it is left: no process
/// (the sandbox, Claude Code, the namespace helper with its relays and proxies, the
/// engine), no container.
fn ends(level: Level, mode: As, how: End) {
    let Some(b) = ide_box(level, mode, "") else {
        return;
    };
    let label = format!("{level:?} {mode:?} {how:?}");
    let t = Tmux::start(&b, &[]);
    t.wait_for("❯");
    let clp = clp_pid(&t);
    let running = session_processes(clp, &b);
    let names: Vec<&str> = running.iter().map(|p| p.comm.as_str()).collect();
    let expected: &[&str] = match level {
        Level::A => &["claude"],
        Level::B => &["clp", "bwrap", "claude"],
        Level::C => &["clp", "podman", "claude"],
    };
    for e in expected {
        assert!(
            names.contains(e),
            "{label}: no `{e}` in the session: {names:?}"
        );
    }
    if level == Level::C {
        assert!(container_listed(&b, clp), "{label}: no container listed");
    }
    match how {
        End::Hangup => {
            t.tmux(&["kill-session", "-t", &t.session]);
        }
        End::Term | End::Kill => {
            let sig = match how {
                End::Term => nix::sys::signal::Signal::SIGTERM,
                _ => nix::sys::signal::Signal::SIGKILL,
            };
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(clp), sig).unwrap();
        }
    }
    let gone = wait_until(|| {
        let left = still_running(&running, &b);
        let listed = level == Level::C && container_listed(&b, clp);
        (left.is_empty() && !listed).then_some(())
    });
    let left: Vec<String> = still_running(&running, &b)
        .iter()
        .map(|p| format!("{} {}", p.pid, p.cmdline))
        .collect();
    assert!(
        gone.is_some(),
        "{label}: left behind: {left:#?}, container listed: {}",
        level == Level::C && container_listed(&b, clp)
    );
    drop(t);
}

#[test]
fn closing_the_terminal_ends_every_level_as_user() {
    for level in [Level::A, Level::B, Level::C] {
        ends(level, As::User, End::Hangup);
    }
}

#[test]
fn closing_the_terminal_ends_every_level_as_root() {
    for level in [Level::A, Level::B, Level::C] {
        ends(level, As::Root, End::Hangup);
    }
}

#[test]
fn sigterm_to_clp_ends_every_level_as_user() {
    for level in [Level::A, Level::B, Level::C] {
        ends(level, As::User, End::Term);
    }
}

#[test]
fn sigterm_to_clp_ends_every_level_as_root() {
    for level in [Level::A, Level::B, Level::C] {
        ends(level, As::Root, End::Term);
    }
}

#[test]
fn sigkill_of_clp_ends_every_level_as_user() {
    for level in [Level::A, Level::B, Level::C] {
        ends(level, As::User, End::Kill);
    }
}

#[test]
fn sigkill_of_clp_ends_every_level_as_root() {
    for level in [Level::A, Level::B, Level::C] {
        ends(level, As::Root, End::Kill);
    }
}

/// `oauth` at B, then C, then A: each starts (no stale mount point in the profile home
/// reads as a corrupt config), and the real `~/.claude/ide`, writable for the oauth
/// profile's `~/.claude`, keeps the live IDE's lock file.
fn oauth_levels(mode: As) {
    let Some(b) = ide_box(Level::B, mode, "") else {
        return;
    };
    if container::ready(mode, container::IMAGE).is_none() {
        return;
    }
    if mode == As::User {
        container::storage_conf(&b);
    }
    // The main install trusts the workspace (the oauth profile is that install).
    let trusted = json!({
        "hasCompletedOnboarding": true,
        "projects": {b.project.display().to_string(): {"hasTrustDialogAccepted": true}},
    });
    let login = b.write(".claude.json", &trusted.to_string());
    std::os::unix::fs::chown(&login, Some(b.user.uid), Some(b.user.gid)).unwrap();
    let ide = start_ide(&b);
    let real = b.home.join(".claude/ide");
    let before = files(&real);
    let profile = b.home.join(".local/state/clp/oauth/home");
    for level in ["sandbox", "container", "env"] {
        let sets = [
            format!("isolation.level={level}"),
            format!("workspace.path={}", b.project.display()),
            format!("container.image={}", container::IMAGE),
        ];
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let mut args: Vec<&str> = sets.iter().flat_map(|s| ["--set", *s]).collect();
        args.extend(["use", "oauth"]);
        let t = Tmux::start_raw(&b, &args);
        let screen = t.wait_for("❯");
        assert!(
            !screen.to_lowercase().contains("corrupt"),
            "oauth at {level}, {mode:?}:\n{screen}"
        );
        t.quit();
        drop(t);
        assert_eq!(
            files(&real),
            before,
            "oauth at {level}: ~/.claude/ide changed"
        );
        let stale: Vec<PathBuf> = [".claude.json", ".claude/ide"]
            .iter()
            .map(|p| profile.join(p))
            .filter(|p| {
                p.symlink_metadata()
                    .is_ok_and(|m| m.len() == 0 || m.is_dir())
            })
            .filter(|p| !p.is_dir() || std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none()))
            .collect();
        assert!(
            stale.is_empty(),
            "oauth at {level}: mount points left: {stale:?}"
        );
    }
    assert!(ide.lock_path().exists());
}

#[test]
fn oauth_starts_at_b_then_c_then_a_as_user() {
    oauth_levels(As::User);
}

/// The control: the real Claude Code in a pid namespace of its own with the IDE lock
/// dir writable (what bubblewrap without clp's view amounts to) deletes the live IDE's
/// lock file, because the IDE's pid does not exist there. The view is what prevents it.
#[test]
fn control_a_pid_namespace_with_a_writable_lock_dir_loses_the_ide() {
    let Some(b) = ide_box(Level::A, As::Root, "") else {
        return;
    };
    let Some(bwrap) = common::require("bubblewrap", common::which("bwrap")) else {
        return;
    };
    let trusted = json!({
        "hasCompletedOnboarding": true,
        "projects": {b.project.display().to_string(): {"hasTrustDialogAccepted": true}},
    });
    b.write(".claude.json", &trusted.to_string());
    let ide = start_ide(&b);
    let claude = format!("{}/claude", b.path_var.split(':').next().unwrap());
    let env = [
        ("HOME", b.home.display().to_string()),
        ("PATH", b.path_var.clone()),
        ("TERM", "xterm-256color".into()),
        ("ANTHROPIC_BASE_URL", b.url.clone()),
        ("ANTHROPIC_AUTH_TOKEN", "x".into()),
        ("DISABLE_AUTOUPDATER", "1".into()),
        ("CLAUDE_CODE_SSE_PORT", ide.port().to_string()),
    ];
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}='{v}'")).collect();
    let line = format!(
        "cd '{}' && exec env -i {} {} --dev-bind / / --unshare-pid --proc /proc -- {claude}",
        b.project.display(),
        env.join(" "),
        bwrap.display()
    );
    let socket = b.dir.path().join("control.sock");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap()
    };
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "control",
        "-x",
        "160",
        "-y",
        "50",
        &line,
    ]);
    let deleted = wait_until(|| (!ide.lock_path().exists()).then_some(()));
    let screen = text(&tmux(&["capture-pane", "-p", "-t", "control"])).0;
    tmux(&["kill-server"]);
    assert!(
        deleted.is_some(),
        "the control did not reproduce the deletion:\n{screen}"
    );
}

/// Two sessions of the `oauth` profile at once: the one that ends first leaves the mount
/// point of the main login alone (the other still has the login mounted there); the
/// last one removes it.
#[test]
fn the_last_session_removes_the_mount_points_not_the_first() {
    let Some(b) = ide_box(Level::B, As::User, "") else {
        return;
    };
    let login = b.write(
        ".claude.json",
        "{\"hasCompletedOnboarding\":true,\"userID\":\"REALUSER\"}",
    );
    std::os::unix::fs::chown(&login, Some(b.user.uid), Some(b.user.gid)).unwrap();
    let point = b.home.join(".local/state/clp/oauth/home/.claude.json");
    let ws = format!("workspace.path={}", b.project.display());
    let run = |script: &str| {
        let mut c = b.clp(&[
            "--set",
            "isolation.level=sandbox",
            "--set",
            &ws,
            "run",
            "oauth",
            "--",
            "sh",
            "-c",
            script,
        ]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    // Guarded: should an assertion fail before `go`, the waiting session must not stay.
    let first = crate::common::Guarded::spawn(&mut run(
        "touch started; while [ ! -e go ]; do sleep 0.1; done; cat \"$HOME/.claude.json\"",
    ));
    let started = wait_until(|| b.project.join("started").exists().then_some(()));
    assert!(started.is_some(), "the first session did not start");
    let second = run("true").output().unwrap();
    assert!(second.status.success(), "{}", text(&second).1);
    assert!(
        point.exists(),
        "the second session removed the first one's mount point"
    );
    std::fs::write(b.project.join("go"), "").unwrap();
    let first = first.wait_with_output();
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stderr}");
    assert!(
        stdout.contains("REALUSER"),
        "the first session lost its login: {stdout:?}"
    );
    assert!(!point.exists(), "the last session left its mount point");
}
