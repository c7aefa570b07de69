//! The stand-in IDE and the scripted tool turn against the real Claude Code.
//!
//! Claude Code 2.1.330 connects to an IDE only in an interactive session:
//! the auto-connect runs in its terminal UI, so `claude -p` never dials the
//! IDE, even with `--ide` and `CLAUDE_CODE_SSE_PORT` (and `--mcp-config`
//! refuses the `ws-ide` server type). So the check types its prompt into an
//! interactive Claude Code under tmux, once the IDE has seen the MCP
//! handshake. A `-p` run beside it pins the other half: no connection, and
//! the fake model answers `NO_TOOL:mcp__ide__getDiagnostics`.
//!
//! Claude Code also needs:
//! - `ENABLE_TOOL_SEARCH=false`: by default MCP tools are deferred behind
//!   `ToolSearch` (only named in a system message, absent from `tools`);
//! - `--allowedTools mcp__ide__getDiagnostics`: otherwise the default `auto`
//!   permission mode sends the call to its classifier, which asks the fake
//!   model, gets no usable verdict, and blocks the call;
//! - the workspace marked trusted in `.claude.json`.
//!
//! Claude Code is `$CLP_TEST_CLAUDE`, the CI cache
//! (`~/.cache/clp-ci/claude-code/node_modules/.bin/claude`) or `claude` on
//! PATH, and tmux is needed. Without them the test prints `SKIPPED: ...`,
//! and fails instead under `CLP_REQUIRE_ALL=1`.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use clp_test_backend::ide::{Ide, IdeConfig};
use clp_test_backend::parts::{claude, poll, require, which};
use clp_test_backend::{Backend, Config, LoggedRequest, ToolScript, NO_TOOL_PREFIX};
use serde_json::{json, Value};

const DIAGNOSTICS_TOOL: &str = "mcp__ide__getDiagnostics";

/// A marker in the diagnostics that must come back to the model.
const MARKER: &str = "STAND-IN-DIAGNOSTIC";

/// Hang guard for each wait. Claude Code polls for an IDE for up to 30 s.
const WAIT: Duration = Duration::from_secs(90);

/// Polls `f` every 100 ms until it returns `Some`, or gives up after [`WAIT`].
fn wait_for<T>(f: impl FnMut() -> Option<T>) -> Option<T> {
    poll(WAIT, Duration::from_millis(100), f)
}

/// `s` quoted for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A temporary HOME with a trusted workspace, the stand-in IDE (lock in
/// `<HOME>/.claude/ide`) and the fake Messages API scripted to call
/// `mcp__ide__getDiagnostics`.
struct Fixture {
    tmp: tempfile::TempDir,
    home: PathBuf,
    cfg: PathBuf,
    workspace: PathBuf,
    ide: Ide,
    backend: Backend,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("clp-ide-")
            .tempdir()
            .unwrap();
        let home = tmp.path().join("home");
        let cfg = tmp.path().join("cfg");
        let workspace = home.join("project");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&cfg).unwrap();
        let seed = json!({
            "hasCompletedOnboarding": true,
            "projects": {workspace.display().to_string(): {"hasTrustDialogAccepted": true}},
        });
        std::fs::write(cfg.join(".claude.json"), seed.to_string()).unwrap();
        let ide = Ide::start(IdeConfig {
            workspace_folders: vec![workspace.display().to_string()],
            diagnostics: json!([{
                "uri": format!("file://{}/main.rs", workspace.display()),
                "diagnostics": [{
                    "message": format!("{MARKER} unused variable `x`"),
                    "severity": "Warning",
                    "range": {"start": {"line": 2, "character": 8},
                              "end": {"line": 2, "character": 9}},
                    "source": "rustc",
                }],
            }]),
            ..IdeConfig::new(home.join(".claude/ide"))
        })
        .unwrap();
        let backend = Backend::start(Config {
            script: Some(ToolScript::Tool {
                name: DIAGNOSTICS_TOOL.into(),
                input: json!({}),
            }),
            ..Config::default()
        })
        .unwrap();
        Fixture {
            tmp,
            home,
            cfg,
            workspace,
            ide,
            backend,
        }
    }

    /// The whole environment Claude Code runs with.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", self.home.display().to_string()),
            ("TERM", "xterm-256color".into()),
            ("CLAUDE_CONFIG_DIR", self.cfg.display().to_string()),
            ("ANTHROPIC_BASE_URL", self.backend.url()),
            ("ANTHROPIC_AUTH_TOKEN", "x".into()),
            ("ANTHROPIC_API_KEY", String::new()),
            ("DISABLE_AUTOUPDATER", "1".into()),
            ("CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL", "1".into()),
            ("ENABLE_TOOL_SEARCH", "false".into()),
            ("CLAUDE_CODE_SSE_PORT", self.ide.port().to_string()),
        ]
    }

    fn messages(&self) -> Vec<Value> {
        self.backend
            .requests_to("/v1/messages")
            .into_iter()
            .filter_map(|r: LoggedRequest| r.json)
            .collect()
    }

    /// The wire log, for whoever reads the test output.
    fn dump(&self, label: &str) {
        eprintln!("==== {label} ====");
        for h in self.ide.handshakes() {
            eprintln!("IDE handshake {} authorized={}", h.path, h.authorized);
            for (n, v) in &h.headers {
                eprintln!("    {n}: {v}");
            }
        }
        for m in self.ide.received() {
            eprintln!("IDE <- {m}");
        }
        for m in self.ide.sent() {
            eprintln!("IDE -> {m}");
        }
        for body in self.messages() {
            let results: Vec<String> = tool_results(&body).iter().map(|b| b.to_string()).collect();
            eprintln!(
                "API <- /v1/messages tools={:?} tool_results={results:?}",
                offered_tools(&body)
            );
        }
    }
}

/// The names of the tools a `/v1/messages` request offers.
fn offered_tools(body: &Value) -> Vec<&str> {
    body["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default()
}

/// Every `tool_result` block of a request.
fn tool_results(body: &Value) -> Vec<&Value> {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .collect()
}

/// A tmux server on its own socket, killed on drop (also when a test
/// panics).
struct Tmux {
    socket: PathBuf,
    /// Claude Code's pid once known: drop waits for it to exit, since it
    /// writes logs under HOME while it exits and would race the removal of
    /// the temporary HOME.
    claude_pid: Cell<Option<u32>>,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        out
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "claude"]).stdout)
            .into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").stderr(Stdio::null()).status();
        if let Some(pid) = self.claude_pid.get() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn claude_code_calls_the_stand_in_ide_for_the_model() {
    let Some(claude) = claude() else { return };
    let Some(_) = require("tmux", which("tmux")) else {
        return;
    };
    let fx = Fixture::new();

    // `-p`: no IDE connection, so the model is not offered the tool.
    let out = Command::new(&claude)
        .args(["-p", "check", "--allowedTools", DIAGNOSTICS_TOOL])
        .current_dir(&fx.workspace)
        .env_clear()
        .envs(fx.env())
        .stdin(Stdio::null())
        .output()
        .expect("run claude -p");
    let stdout = String::from_utf8_lossy(&out.stdout);
    fx.dump("claude -p");
    assert!(out.status.success(), "claude -p failed: {out:?}");
    assert_eq!(stdout.trim(), format!("{NO_TOOL_PREFIX}{DIAGNOSTICS_TOOL}"));
    assert_eq!(fx.ide.connections(), 0, "claude -p connected to the IDE");

    // Interactive: Claude Code finds the lock, connects, and the model's call
    // reaches the IDE.
    let script = fx.tmp.path().join("claude.sh");
    let env: Vec<String> = fx
        .env()
        .iter()
        .map(|(k, v)| format!("{k}={}", sh_quote(v)))
        .collect();
    std::fs::write(
        &script,
        format!(
            "exec env -i {} {} --allowedTools {DIAGNOSTICS_TOOL}\n",
            env.join(" "),
            sh_quote(&claude.display().to_string())
        ),
    )
    .unwrap();
    let tmux = Tmux {
        socket: fx.tmp.path().join("tmux.sock"),
        claude_pid: Cell::new(None),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "claude",
        "-x",
        "160",
        "-y",
        "50",
        "-c",
        &fx.workspace.display().to_string(),
        &format!("bash {}", sh_quote(&script.display().to_string())),
    ]);
    let connected = wait_for(|| {
        let received = fx.ide.received();
        received
            .iter()
            .any(|m| m["method"] == "tools/list")
            .then_some(())
    });
    if connected.is_none() {
        fx.dump("interactive");
        panic!("Claude Code did not connect:\n{}", tmux.screen());
    }
    let pid = fx
        .ide
        .received()
        .iter()
        .find_map(|m| (m["method"] == "ide_connected").then(|| m["params"]["pid"].as_u64())?);
    tmux.claude_pid.set(pid.and_then(|p| u32::try_from(p).ok()));
    tmux.run(&["send-keys", "-t", "claude", "-l", "check"]);
    // The input line, `❯` and the text (tmux may render the gap as U+00A0).
    let typed = wait_for(|| {
        tmux.screen()
            .lines()
            .any(|l| l.starts_with('❯') && l.ends_with("check"))
            .then_some(())
    });
    assert!(
        typed.is_some(),
        "the prompt did not show:\n{}",
        tmux.screen()
    );
    tmux.run(&["send-keys", "-t", "claude", "Enter"]);
    let answered = wait_for(|| {
        let screen = tmux.screen();
        (screen.contains("TOOL_RESULT:") && screen.contains(MARKER)).then_some(screen)
    });
    fx.dump("interactive");
    let Some(screen) = answered else {
        panic!("no TOOL_RESULT with the diagnostics:\n{}", tmux.screen());
    };
    eprintln!("{screen}");

    assert_eq!(fx.ide.connections(), 1);
    assert_eq!(fx.ide.rejected(), 0);
    let received = fx.ide.received();
    let methods: Vec<&str> = received
        .iter()
        .filter_map(|m| m["method"].as_str())
        .collect();
    assert_eq!(
        methods[..4],
        [
            "initialize",
            "notifications/initialized",
            "ide_connected",
            "tools/list"
        ]
    );
    let handshake = &fx.ide.handshakes()[0];
    assert_eq!(handshake.header("sec-websocket-protocol"), Some("mcp"));
    assert_eq!(
        handshake.header("x-claude-code-ide-authorization"),
        Some(fx.ide.auth_token())
    );
    assert!(
        fx.ide
            .tool_calls()
            .contains(&("getDiagnostics".to_string(), json!({}))),
        "{:?}",
        fx.ide.tool_calls()
    );
    // The model was offered the tool, and a later request carried the
    // IDE's answer back as the tool_result.
    let messages = fx.messages();
    assert!(messages
        .iter()
        .any(|b| offered_tools(b).contains(&DIAGNOSTICS_TOOL)));
    assert!(
        messages.iter().any(|b| tool_results(b)
            .iter()
            .any(|r| r.to_string().contains(MARKER))),
        "no request carried the diagnostics back"
    );
}
