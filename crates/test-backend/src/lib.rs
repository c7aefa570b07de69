//! `clp-test-backend`: a small fake Anthropic Messages API server on loopback
//! for integration tests, and (in [`ide`]) a stand-in for an IDE extension
//! that Claude Code connects to. This file owns the public API ([`Backend`],
//! [`Config`], [`HealthMode`], [`ToolScript`], [`LoggedRequest`]) and the
//! threaded accept/connection loop; HTTP framing lives in `http`, routing and
//! the fake model in `anthropic`.
//!
//! ```no_run
//! use clp_test_backend::{Backend, Config, ToolScript};
//!
//! let backend = Backend::start(Config {
//!     script: Some(ToolScript::Bash { command: "echo hi".into() }),
//!     ..Config::default()
//! })
//! .unwrap();
//! // Point Claude Code at it: ANTHROPIC_BASE_URL=<backend.url()>
//! println!("{}", backend.url());
//! for req in backend.requests() {
//!     println!("{} {}", req.method, req.path);
//! }
//! // Dropping `backend` stops the server.
//! ```
//!
//! Endpoints: `GET /health`, `GET /v1/models` (and `/models`),
//! `POST /v1/messages` (JSON or SSE with `"stream": true`),
//! `POST /v1/messages/count_tokens`; anything else is a 404 JSON error.
//! Query strings are ignored for routing. While [`HealthMode::Loading`] is
//! set, every endpoint answers 503 like llama-server does while loading.

mod anthropic;
mod http;
pub mod ide;
pub mod parts;
mod server;

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use serde::Serialize;
use serde_json::Value;

pub use anthropic::{NO_TOOL_PREFIX, SCRIPTED_DESCRIPTION, TOOL_RESULT_PREFIX};

/// What `/health` (and every other endpoint) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthMode {
    /// Normal operation: `GET /health` is `200 {"status":"ok"}`.
    #[default]
    Ok,
    /// Like llama-server while loading: every request gets
    /// `503 {"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`.
    Loading,
}

/// A scripted tool turn, to prove a client really ran (or refused) a tool.
///
/// Both variants share one stateless rule. While the conversation holds no
/// `tool_result` block, a `/v1/messages` request that offers tools is
/// answered with one `tool_use` block and `stop_reason: "tool_use"`. Once the
/// conversation holds a `tool_result`, the reply is the text
/// `TOOL_RESULT:<content>` (the last tool result's text, text blocks joined
/// with `\n`) with `stop_reason: "end_turn"`. Requests offering no tools
/// (Claude Code's side requests: titles, quota probes) get
/// [`Config::reply_text`]. Every new conversation gets the tool call again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolScript {
    /// Calls the tool `Bash` with input
    /// `{"command": command, "description": "scripted test command"}`
    /// ([`SCRIPTED_DESCRIPTION`]) whenever the request offers any tool,
    /// whether or not `Bash` is among them.
    Bash {
        /// The shell command the scripted `Bash` call asks to run.
        command: String,
    },
    /// Calls the tool `name` with `input`, but only when the request's
    /// `tools` array offers a tool of that name. A request that offers other
    /// tools but not this one gets the text `NO_TOOL:<name>`
    /// ([`NO_TOOL_PREFIX`]), so a test can tell "the client did not offer the
    /// tool" (e.g. no IDE connected, so no `mcp__ide__getDiagnostics`) from
    /// "the tool ran".
    ///
    /// A deferred tool counts as not offered: Claude Code 2.1.330 by default
    /// names MCP tools only in a system message for its `ToolSearch` tool and
    /// leaves them out of `tools`. Run it with `ENABLE_TOOL_SEARCH=false` to
    /// have them listed.
    Tool {
        /// Tool name as the client offers it, e.g. `mcp__ide__getDiagnostics`.
        name: String,
        /// The `input` object of the `tool_use` block.
        input: Value,
    },
}

/// How the backend behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Port on 127.0.0.1 to bind; `0` (the default) picks a free one.
    pub port: u16,
    /// Text of every plain reply. Default `"pong"`.
    pub reply_text: String,
    /// Model ids listed by `GET /v1/models`. Default `["glm-flash-q4"]`.
    pub models: Vec<String>,
    /// Initial health mode; switch later with [`Backend::set_health`].
    pub health: HealthMode,
    /// Optional scripted tool turn, see [`ToolScript`].
    pub script: Option<ToolScript>,
    /// If set, each request is appended to this file as one JSON line
    /// (the serialized [`LoggedRequest`]).
    pub log_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            reply_text: "pong".to_string(),
            models: vec!["glm-flash-q4".to_string()],
            health: HealthMode::Ok,
            script: None,
            log_file: None,
        }
    }
}

/// One request as the backend received it (logged before it is answered).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query string, e.g. `/v1/messages`.
    pub path: String,
    /// Query string without the `?` (e.g. `beta=true`), if any.
    pub query: Option<String>,
    /// Headers with lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, decoded lossily as UTF-8 (de-chunked).
    pub body: String,
    /// The body parsed as JSON, if it is JSON.
    pub json: Option<Value>,
}

impl LoggedRequest {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    config: Config,
    ids: AtomicU64,
    health: Mutex<HealthMode>,
    requests: Mutex<Vec<LoggedRequest>>,
    log: Mutex<Option<File>>,
    conns: server::Conns,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running backend. Dropping it stops the server (see [`Backend::stop`]).
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// Binds `127.0.0.1:<config.port>` (`0` = any free port), opens the log
    /// file if any, and serves in background threads.
    pub fn start(config: Config) -> io::Result<Backend> {
        let listener = TcpListener::bind(("127.0.0.1", config.port))?;
        let addr = listener.local_addr()?;
        let log = match &config.log_file {
            Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            health: Mutex::new(config.health),
            config,
            ids: AtomicU64::new(1),
            requests: Mutex::new(Vec::new()),
            log: Mutex::new(log),
            conns: server::Conns::default(),
        });
        let acceptor = server::spawn(
            "clp-test-backend",
            listener,
            &shared,
            |s| &s.conns,
            |stream, s| {
                let _ = serve_connection(stream, s);
            },
        )?;
        Ok(Backend {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:PORT`, suitable for `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The received requests whose path (without query) equals `path`.
    pub fn requests_to(&self, path: &str) -> Vec<LoggedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Switches the health mode at runtime.
    pub fn set_health(&self, mode: HealthMode) {
        *lock(&self.shared.health) = mode;
    }

    /// The current health mode.
    pub fn health(&self) -> HealthMode {
        *lock(&self.shared.health)
    }

    /// Stops accepting, closes open connections and joins the threads.
    /// Idempotent; also done on drop.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        server::stop(&self.shared.conns, self.addr, acceptor);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let req = match http::read_request(&mut reader, &mut writer) {
            Ok(Some(req)) => req,
            Ok(None) => return Ok(()),
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    let resp = http::Response::json(
                        400,
                        &serde_json::json!({"type": "error", "error": {
                            "type": "invalid_request_error", "message": e.to_string()}}),
                    );
                    let _ = http::write_response(&mut writer, &resp, false, false);
                }
                return Err(e);
            }
        };
        if shared.conns.stopping() {
            return Ok(());
        }
        let body = String::from_utf8_lossy(&req.body).into_owned();
        let json: Option<Value> = serde_json::from_slice(&req.body).ok();
        let logged = LoggedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            body,
            json,
        };
        record(shared, &logged);
        let health = *lock(&shared.health);
        let resp = anthropic::respond(
            &req,
            logged.json.as_ref(),
            &shared.config,
            health,
            &shared.ids,
        );
        let keep_alive = req.keep_alive();
        http::write_response(&mut writer, &resp, keep_alive, req.method == "HEAD")?;
        if !keep_alive {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

fn record(shared: &Shared, logged: &LoggedRequest) {
    if let Some(file) = lock(&shared.log).as_mut() {
        if let Ok(line) = serde_json::to_string(logged) {
            let _ = writeln!(file, "{line}");
            let _ = file.flush();
        }
    }
    lock(&shared.requests).push(logged.clone());
}

#[cfg(test)]
mod tests;
