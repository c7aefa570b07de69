//! The context the server really has, with the real llama-server and the real Claude
//! Code: a profile that does not set `model.context` takes the server's `n_ctx` at
//! preflight; a profile that claims more than the server has is warned, naming both
//! numbers; and a session against a 32k server compacts before the server refuses a
//! request (the control, plain Claude Code without clp's budget, is refused).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, text, Env};
use crate::llama;

/// llama-server with the test model as `glm-flash-q4`, its context `ctx`, its log kept.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(ctx: u32) -> Option<Server> {
        let (server, model) = (llama::llama_server()?, llama::model()?);
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("llama.log");
        let port = llama::free_port();
        let child = Command::new(server)
            .args(["-m", &model.display().to_string(), "--host", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--alias", "glm-flash-q4"])
            .args(["-c", &ctx.to_string(), "-t", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let s = Server {
            child,
            port,
            log,
            _dir: dir,
        };
        let health = format!("{}/health", s.url());
        let deadline = Instant::now() + Duration::from_secs(60);
        while clp_core::probe::health(&health, Duration::from_secs(1))
            != clp_core::probe::Health::Ready
        {
            assert!(Instant::now() < deadline, "llama-server did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(s)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many requests the server has refused for their size so far.
    fn refusals(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("exceeds the available context size")
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A profile `ctx` of its own (no `model.context`) at level A against `url`.
fn ctx_env(claude: &Path, url: &str, extra: &str) -> Env {
    let mut env = Env::new();
    env.path_var = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        claude.parent().unwrap().display()
    );
    env.profile(
        "ctx",
        &format!(
            "[auth]\nmode = \"auth-token\"\ntoken = \"x\"\n[backend]\nurl = \"{url}\"\n\
             models = \"/v1/models\"\n[model]\ndefault = \"glm-flash-q4\"\n{extra}\n\
             [isolation]\nlevel = \"env\"\n[workspace]\npath = \"~/project\"\ntrust = true\n"
        ),
    );
    env
}

fn settings_env(env: &Env) -> serde_json::Value {
    let path = env.home.join(".local/state/clp/ctx/settings.json");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    s["env"].clone()
}

#[test]
fn the_server_context_is_taken_when_the_profile_does_not_say() {
    let Some(claude) = common::claude() else {
        return;
    };
    let Some(server) = Server::start(20_000) else {
        return;
    };
    let env = ctx_env(&claude, &server.url(), "");
    let out = env.run(&["run", "ctx", "--", "true"]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let e = settings_env(&env);
    // llama-server rounds `-c 20000` up to 20224.
    assert_eq!(e["CLAUDE_CODE_MAX_CONTEXT_TOKENS"], "20224", "{e}");
    assert_eq!(e["CLAUDE_CODE_MAX_OUTPUT_TOKENS"], "2048", "{e}");
    // Too small to compact in time: said at launch.
    assert!(
        stderr.contains("smaller than Claude Code needs"),
        "{stderr}"
    );

    // Control: without the preflight, the server is not asked.
    let out = env.run(&["run", "ctx", "--no-check", "--", "true"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(settings_env(&env)
        .get("CLAUDE_CODE_MAX_CONTEXT_TOKENS")
        .is_none());
}

#[test]
fn a_profile_claiming_more_than_the_server_has_is_warned() {
    let Some(claude) = common::claude() else {
        return;
    };
    let Some(server) = Server::start(32_768) else {
        return;
    };
    let env = ctx_env(&claude, &server.url(), "context = 65536");
    let out = env.run(&["run", "ctx", "--", "true"]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`model.context` is 65536 tokens but the server's context is 32768"),
        "{stderr}"
    );
    // The profile's word stands (the user may be about to restart the server).
    assert_eq!(
        settings_env(&env)["CLAUDE_CODE_MAX_CONTEXT_TOKENS"],
        "65536"
    );
    // Control: a claim the server meets is not warned about.
    let env = ctx_env(&claude, &server.url(), "context = 32768");
    let out = env.run(&["run", "ctx", "--", "true"]);
    assert!(!text(&out).1.contains("model.context"), "{}", text(&out).1);
}

/// A user prompt of about 4,000 tokens for the tiny model's vocabulary.
fn long_prompt(turn: usize) -> String {
    let words: Vec<String> = (0..560).map(|i| format!("lorem{i} ipsum dolor")).collect();
    format!("turn {turn}: {}", words.join(" "))
}

#[test]
fn a_32k_session_compacts_before_the_server_refuses() {
    let Some(claude) = common::claude() else {
        return;
    };
    let Some(server) = Server::start(32_768) else {
        return;
    };
    let env = ctx_env(&claude, &server.url(), "");
    // 13k of Claude Code's own, then 4k a turn: past the compaction point (17,720) at
    // the second turn, past the server's 32,768 at the sixth without compaction.
    for turn in 1..=4 {
        let prompt = long_prompt(turn);
        let mut args = vec!["use", "ctx", "--", "-p", &prompt];
        if turn > 1 {
            args.push("--continue");
        }
        let out = env.run(&args);
        assert!(out.status.success(), "turn {turn}: {}", text(&out).1);
        assert_eq!(
            server.refusals(),
            0,
            "turn {turn}: the server refused a request"
        );
    }
    let projects = env.home.join(".local/state/clp/ctx/claude/projects");
    let transcripts = common::tree(&projects);
    let compactions: usize = transcripts
        .keys()
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| {
            std::fs::read_to_string(projects.join(p))
                .unwrap()
                .matches("\"subtype\":\"compact_boundary\"")
                .count()
        })
        .sum();
    assert!(compactions >= 1, "Claude Code never compacted");

    // Control: the same conversation with plain Claude Code and no budget (its defaults
    // for an unknown model) runs into the server's limit.
    let cfg = env.home.join("plain-claude");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join(".claude.json"),
        "{\"hasCompletedOnboarding\":true}",
    )
    .unwrap();
    let before = server.refusals();
    for turn in 1..=6 {
        let prompt = long_prompt(turn);
        let mut c = Command::new(&claude);
        c.args(["-p", &prompt]);
        if turn > 1 {
            c.arg("--continue");
        }
        let _ = c
            .env_clear()
            .env("HOME", &env.home)
            .env("PATH", &env.path_var)
            .env("CLAUDE_CONFIG_DIR", &cfg)
            .env("ANTHROPIC_BASE_URL", server.url())
            .env("ANTHROPIC_AUTH_TOKEN", "x")
            .env("ANTHROPIC_MODEL", "glm-flash-q4")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .current_dir(&env.project)
            .stdin(Stdio::null())
            .output()
            .unwrap();
    }
    assert!(
        server.refusals() > before,
        "the control never reached the server's limit"
    );
}
