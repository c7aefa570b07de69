//! The real backend: llama.cpp's llama-server with the tiny deterministic test model,
//! reached by the real Claude Code through clp at levels A and B, and every backend state
//! a user meets (not up yet, down, another model, switching models).
//!
//! llama-server comes from `$CLP_TEST_LLAMA_SERVER` or `~/.cache/clp-ci/llama/bin`
//! (built by `.ci/run` from `../shared/backends/tiny-llama/build-llama-server.sh`); the
//! model from `$CLP_TEST_MODEL` or `../shared/backends/tiny-llama/tiny-llama-q4_0.gguf`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clp_test_backend::{Backend, Config};

use crate::common::{self, assert_only_changed, require, text, Env};
use crate::sandbox::{self, As};

/// What the tiny model always answers.
const SENTENCE: &str = "Hello! I am a tiny test model.";

pub fn llama_server() -> Option<PathBuf> {
    let found = std::env::var_os("CLP_TEST_LLAMA_SERVER")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(Path::new(&home).join(".cache/clp-ci/llama/bin/llama-server"))
        })
        .filter(|p| p.is_file());
    require(
        "llama-server (.ci/run builds it into ~/.cache/clp-ci/llama)",
        found,
    )
}

pub fn model() -> Option<PathBuf> {
    let found = std::env::var_os("CLP_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            common::repo().join("../shared/backends/tiny-llama/tiny-llama-q4_0.gguf")
        })
        .canonicalize()
        .ok();
    require("the tiny test model (../shared/backends/tiny-llama)", found)
}

/// llama-server serving the test model as `alias` on a free port, when both exist.
fn serve(alias: &str) -> Option<Llama> {
    let (server, model) = (llama_server()?, model()?);
    Some(Llama::start(&server, &model, free_port(), alias))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running llama-server; killed on drop.
pub struct Llama {
    child: Child,
    pub port: u16,
}

impl Llama {
    /// Starts llama-server on `port` serving the test model as `alias`, and waits until it
    /// answers `/health` with 200.
    pub fn start(server: &Path, model: &Path, port: u16, alias: &str) -> Llama {
        let child = Command::new(server)
            .args(["-m", &model.display().to_string(), "--host", "127.0.0.1"])
            .args([
                "--port",
                &port.to_string(),
                "--alias",
                alias,
                "-c",
                "32768",
                "-t",
                "2",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let llama = Llama { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if clp_core::probe::health(&llama.health_url(), Duration::from_secs(1))
                == clp_core::probe::Health::Ready
            {
                return llama;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("llama-server did not get ready on port {port}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn health_url(&self) -> String {
        format!("{}/health", self.url())
    }
}

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An env whose PATH finds Claude Code, with a profile `e2e` extending `base` at `url`,
/// and a populated main install.
fn e2e_env(claude: &Path, base: &str, url: &str, extra: &str) -> Env {
    let env = Env::with_claude(claude, base, url, extra);
    env.populate_main_install();
    env
}

/// `clp use box -- -p "say hi"` in `b` answers with the model's sentence, and nothing
/// outside clp's dirs (and `also`) changes.
fn assert_sentence(b: &sandbox::Box, mode: As, also: &[&Path]) {
    let before = common::tree(&b.home);
    let out = b
        .clp(&["use", "box", "--", "-p", "say hi"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{mode:?}: {stdout}\n{stderr}");
    assert!(stdout.contains(SENTENCE), "{mode:?}: {stdout}\n{stderr}");
    let mut allowed = vec![Path::new(".local/state/clp"), Path::new("project")];
    allowed.extend(also);
    assert_only_changed(&before, &common::tree(&b.home), &allowed);
}

#[test]
fn level_a_gets_its_answer_from_llama_server() {
    let (Some(llama), Some(claude)) = (serve("glm-flash-q4"), common::claude()) else {
        return;
    };
    let env = e2e_env(&claude, "local-env", &llama.url(), "");
    let before = env.snapshot_tree();
    let out = env.run(&["use", "e2e", "--", "-p", "say hi"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(SENTENCE), "{stdout}\n{stderr}");
    assert_only_changed(
        &before,
        &env.snapshot_tree(),
        &[Path::new(".local/state/clp")],
    );
}

fn level_b(mode: As) {
    let Some(llama) = serve("glm-flash-q4") else {
        return;
    };
    let unused = Backend::start(Config::default()).unwrap();
    let Some(b) = sandbox::box_with_claude(mode, unused, Some(llama.url())) else {
        return;
    };
    assert_sentence(&b, mode, &[]);
}

/// The same with the network filtered (`offline`): the backend is all the session
/// reaches, through the relay clp serves.
fn level_b_offline(mode: As) {
    let Some(llama) = serve("glm-flash-q4") else {
        return;
    };
    let unused = Backend::start(Config::default()).unwrap();
    let Some(b) = sandbox::box_with_claude(mode, unused, Some(llama.url())) else {
        return;
    };
    b.profile(
        "box",
        &format!(
            "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\n\
             [network]\nmode = \"offline\"\n",
            llama.url()
        ),
    );
    assert_sentence(&b, mode, &[]);
}

#[test]
fn level_b_offline_gets_its_answer_from_llama_server_as_root() {
    level_b_offline(As::Root);
}

#[test]
fn level_b_offline_gets_its_answer_from_llama_server_as_user() {
    level_b_offline(As::User);
}

#[test]
fn level_b_gets_its_answer_from_llama_server_as_root() {
    level_b(As::Root);
}

#[test]
fn level_b_gets_its_answer_from_llama_server_as_user() {
    level_b(As::User);
}

/// Level C: Claude Code in the container gets its answer from the llama-server on the
/// host's loopback (`--network=host`).
fn level_c(mode: As) {
    let (Some(server), Some(model)) = (llama_server(), model()) else {
        return;
    };
    let Some(user) = crate::container::ready(mode, "localhost/clp-claude:2.1.330") else {
        return;
    };
    let llama = Llama::start(&server, &model, free_port(), "glm-flash-q4");
    let unused = Backend::start(Config::default()).unwrap();
    let b = crate::container::container_box_at(mode, user, unused, &llama.url(), false, "");
    assert_sentence(&b, mode, &[Path::new(".config/containers")]);
}

#[test]
fn level_c_gets_its_answer_from_llama_server_as_root() {
    level_c(As::Root);
}

#[test]
fn level_c_gets_its_answer_from_llama_server_as_user() {
    level_c(As::User);
}

/// Started late: clp waits (`backend.wait`) with a progress line, then launches.
#[test]
fn a_server_started_late_is_waited_for() {
    let (Some(server), Some(model), Some(claude)) = (llama_server(), model(), common::claude())
    else {
        return;
    };
    let port = free_port();
    let env = e2e_env(
        &claude,
        "local-env",
        &format!("http://127.0.0.1:{port}"),
        "",
    );
    let child = common::Guarded::spawn(
        env.clp()
            .args([
                "--set",
                "backend.wait=60",
                "use",
                "e2e",
                "--",
                "-p",
                "say hi",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    std::thread::sleep(Duration::from_secs(2));
    let _llama = Llama::start(&server, &model, port, "glm-flash-q4");
    let out = child.wait_with_output();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("waiting for the backend at"), "{stderr}");
    assert!(stdout.contains(SENTENCE), "{stdout}");
}

/// Down: a clear error naming the URL and the escape hatch; `--no-check` skips it.
#[test]
fn a_server_that_is_down_is_a_clear_error() {
    let Some(claude) = common::claude() else {
        return;
    };
    let port = free_port();
    let env = e2e_env(
        &claude,
        "local-env",
        &format!("http://127.0.0.1:{port}"),
        "",
    );
    let out = env.run(&["use", "e2e", "--", "-p", "say hi"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!(
            "the backend at `http://127.0.0.1:{port}/health` is unreachable"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--no-check"), "{stderr}");
}

/// Another model loaded: a warning naming what the server serves; the launch goes on.
#[test]
fn another_alias_is_a_warning_naming_the_served_model() {
    let (Some(llama), Some(claude)) = (serve("qwen3-coder-q4"), common::claude()) else {
        return;
    };
    let env = e2e_env(&claude, "local-env", &llama.url(), "");
    let out = env.run(&["use", "e2e", "--", "-p", "say hi"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "the backend does not list the model `glm-flash-q4`; it serves: qwen3-coder-q4"
        ),
        "{stderr}"
    );
}

/// A management endpoint (like the one in front of the user's llama-server) that
/// restarts llama-server with the alias a `POST /switch {"model": ...}` asks for.
///
/// Dropping it stops its thread and the llama-server it runs, whichever that is by then:
/// the thread used to own the restarted server and block in `accept` forever, so the
/// server (alias `qwen-test`) outlived the test binary.
struct Manager {
    port: u16,
    switches: Arc<Mutex<Vec<String>>>,
    llama: Arc<Mutex<Option<Llama>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Manager {
    fn start(server: PathBuf, model: PathBuf, llama: Llama) -> Manager {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let switches = Arc::new(Mutex::new(Vec::new()));
        let slot = Arc::new(Mutex::new(Some(llama)));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, running, stopped) = (switches.clone(), slot.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let mut length = 0;
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let wanted = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["model"].as_str().map(str::to_owned));
                let Some(alias) = wanted else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    continue;
                };
                let old = running.lock().unwrap().take();
                let port = old.as_ref().map(|l| l.port).unwrap();
                drop(old);
                seen.lock().unwrap().push(alias.clone());
                // Answer first: the server restarts in the background, as a real
                // manager's would; clp waits for it.
                let (server, model) = (server.clone(), model.clone());
                let handle = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(500));
                    Llama::start(&server, &model, port, &alias)
                });
                let _ = stream.write_all(
                    b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                // A start that failed has killed its own server (its guard dropped).
                let Ok(new) = handle.join() else { break };
                *running.lock().unwrap() = Some(new);
            }
            // Stopping: whatever runs now goes with the thread.
            running.lock().unwrap().take();
        });
        Manager {
            port,
            switches,
            llama: slot,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the thread from `accept`; it then stops its server and ends.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.llama.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[test]
fn switching_models_restarts_the_server_and_waits_for_the_model() {
    let (Some(server), Some(model), Some(claude)) = (llama_server(), model(), common::claude())
    else {
        return;
    };
    let llama = Llama::start(&server, &model, free_port(), "glm-flash-q4");
    let url = llama.url();
    let manager = Manager::start(server, model, llama);
    let extra = format!(
        "[model]\ndefault = \"qwen-test\"\n[backend.switch]\nurl = \"http://127.0.0.1:{}/switch\"\nbody = '{{\"model\": \"qwen-test\"}}'\n",
        manager.port
    );
    let env = e2e_env(&claude, "local-env", &url, &extra);
    let out = env.run(&["use", "e2e", "--", "-p", "say hi"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(SENTENCE), "{stdout}");
    assert_eq!(*manager.switches.lock().unwrap(), ["qwen-test"]);
    assert!(
        stderr.contains(&format!(
            "switching the backend's model: POST http://127.0.0.1:{}/switch",
            manager.port
        )),
        "{stderr}"
    );
    let served =
        clp_core::probe::models(&format!("{url}/v1/models"), Duration::from_secs(2)).unwrap();
    assert_eq!(served, ["qwen-test"]);
    // No warning: the model was waited for.
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn doctor_reports_health_models_and_build() {
    let (Some(llama), Some(claude)) = (serve("glm-flash-q4"), common::claude()) else {
        return;
    };
    let env = e2e_env(&claude, "local-env", &llama.url(), "");
    let out = env.run(&["doctor", "e2e"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("ready (from the host)"), "{stdout}");
    assert!(stdout.contains("backend serves `glm-flash-q4`"), "{stdout}");
    assert!(stdout.contains("server: llama.cpp b11434"), "{stdout}");
}
