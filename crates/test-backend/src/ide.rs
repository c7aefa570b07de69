//! A stand-in for VS Code's Claude Code extension, the IDE end of Claude
//! Code's IDE integration, so tests can prove that a Claude Code launched by
//! clp finds and talks to an IDE.
//!
//! The extension listens on `127.0.0.1`, writes a lock file
//! `~/.claude/ide/<port>.lock` naming the port, its pid, its workspace folders
//! and an auth token, and serves MCP (JSON-RPC 2.0) over a WebSocket. Claude
//! Code scans the lock directory, dials `ws://127.0.0.1:<port>` with the
//! subprotocol `mcp` and the header `X-Claude-Code-Ide-Authorization: <token>`,
//! then runs `initialize`, `notifications/initialized`, `ide_connected` and
//! `tools/list`, and calls tools such as `getDiagnostics` and `openDiff`.
//! [`Ide`] does all of that and records what it saw.
//!
//! ```no_run
//! use clp_test_backend::ide::{Ide, IdeConfig};
//!
//! let ide = Ide::start(IdeConfig {
//!     workspace_folders: vec!["/work/project".into()],
//!     diagnostics: serde_json::json!([]),
//!     ..IdeConfig::new("/tmp/home/.claude/ide")
//! })
//! .unwrap();
//! // Run Claude Code with CLAUDE_CODE_SSE_PORT=<ide.port()> in /work/project.
//! for (tool, args) in ide.tool_calls() {
//!     println!("{tool} {args}");
//! }
//! // Dropping `ide` removes the lock file and stops the server.
//! ```
//!
//! One thread per connection; each connection answers its messages in order.
//! `openDiff` blocks like the real tab does (see [`OpenDiffAnswer`]), which
//! needs no second thread: only a later `close_tab` or `closeAllDiffTabs` on
//! the same connection ends it.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{header, HeaderValue, StatusCode};
use tungstenite::{Message, WebSocket};

use crate::lock;
use crate::server::{self, Conns};

/// The header that carries the lock file's `authToken`.
pub const AUTH_HEADER: &str = "x-claude-code-ide-authorization";

/// The WebSocket subprotocol Claude Code asks for.
pub const SUBPROTOCOL: &str = "mcp";

/// `serverInfo.name` in the `initialize` answer.
pub const SERVER_NAME: &str = "stand-in IDE";

/// The `protocolVersion` answered when the client names none.
pub const DEFAULT_PROTOCOL_VERSION: &str = "2025-06-18";

/// The tools `tools/list` offers, under the names the real extension uses.
/// Claude Code calls `getDiagnostics`, `openDiff`, `closeAllDiffTabs` and
/// `close_tab` itself, and offers only `getDiagnostics` and `executeCode` to
/// the model (as `mcp__ide__<name>`).
pub const TOOL_NAMES: [&str; 5] = [
    "getDiagnostics",
    "openDiff",
    "closeAllDiffTabs",
    "close_tab",
    "executeCode",
];

/// How long a connection may take to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// What `openDiff` answers. Claude Code reads the first text block:
/// `FILE_SAVED` (then the second block is the saved contents), `TAB_CLOSED`
/// or `DIFF_REJECTED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenDiffAnswer {
    /// Like a diff tab nobody touches: no answer until Claude Code closes the
    /// tab with `close_tab` (same `tab_name`) or `closeAllDiffTabs`, then
    /// `TAB_CLOSED`.
    #[default]
    WaitForClose,
    /// At once `FILE_SAVED` and the proposed `new_file_contents`, as if the
    /// user accepted the diff unchanged.
    Save,
    /// At once `DIFF_REJECTED`, as if the user rejected the diff.
    Reject,
}

/// How the stand-in IDE presents itself.
#[derive(Debug, Clone, PartialEq)]
pub struct IdeConfig {
    /// Directory of the lock file, normally `<HOME>/.claude/ide`.
    ///
    /// Created with mode 0700 (and any missing parents) if missing.
    pub lock_dir: PathBuf,
    /// `workspaceFolders` of the lock file: absolute paths. Claude Code
    /// auto-connects when its cwd is inside one of them (or when
    /// `CLAUDE_CODE_SSE_PORT` names the port).
    pub workspace_folders: Vec<String>,
    /// `ideName` of the lock file. Default `"Visual Studio Code"`.
    pub ide_name: String,
    /// `authToken` of the lock file; a handshake must carry it in
    /// [`AUTH_HEADER`]. Default: a fresh token from the pid and the clock.
    pub auth_token: String,
    /// `pid` of the lock file. `None` (the default) writes this process's
    /// pid. Claude Code deletes lock files whose pid it cannot signal.
    pub pid: Option<u32>,
    /// What `getDiagnostics` returns, serialized as the text of its one
    /// content block. The extension returns a list of
    /// `{"uri", "diagnostics": [{"message", "severity", "range", "source"}]}`.
    /// Returned as is, whatever `uri` the call names. Default `[]`.
    pub diagnostics: Value,
    /// What `openDiff` answers. Default [`OpenDiffAnswer::WaitForClose`].
    pub open_diff: OpenDiffAnswer,
}

impl IdeConfig {
    /// The defaults, with the lock file in `lock_dir`.
    pub fn new(lock_dir: impl Into<PathBuf>) -> IdeConfig {
        IdeConfig {
            lock_dir: lock_dir.into(),
            workspace_folders: Vec::new(),
            ide_name: "Visual Studio Code".to_string(),
            auth_token: fresh_token(),
            pid: None,
            diagnostics: json!([]),
            open_diff: OpenDiffAnswer::default(),
        }
    }
}

/// A token unique enough for a test run. The extension uses a random UUID;
/// nothing here needs it unguessable.
fn fresh_token() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "clp-ide-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One WebSocket handshake as the stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The request target, e.g. `/`.
    pub path: String,
    /// Headers with lower-case names, in arrival order; values decoded
    /// lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// Whether the token matched (the connection was accepted).
    pub authorized: bool,
}

impl Handshake {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Record {
    handshakes: Vec<Handshake>,
    received: Vec<Value>,
    sent: Vec<Value>,
    tool_calls: Vec<(String, Value)>,
}

struct Shared {
    config: IdeConfig,
    connections: AtomicUsize,
    rejected: AtomicUsize,
    record: Mutex<Record>,
    conns: Conns,
}

/// A running stand-in IDE. Dropping it removes the lock file and stops the
/// server (see [`Ide::stop`]).
pub struct Ide {
    addr: SocketAddr,
    lock_path: PathBuf,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Ide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ide")
            .field("addr", &self.addr)
            .field("lock_path", &self.lock_path)
            .finish_non_exhaustive()
    }
}

impl Ide {
    /// Binds a free port on `127.0.0.1`, writes `<lock_dir>/<port>.lock`
    /// (mode 0600, atomically: a temporary file renamed into place) and
    /// serves in background threads.
    pub fn start(config: IdeConfig) -> io::Result<Ide> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let lock_path = write_lock(&config, addr.port())?;
        let shared = Arc::new(Shared {
            config,
            connections: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            record: Mutex::new(Record::default()),
            conns: Conns::default(),
        });
        let acceptor = server::spawn(
            "clp-test-ide",
            listener,
            &shared,
            |s| &s.conns,
            serve_connection,
        );
        match acceptor {
            Ok(acceptor) => Ok(Ide {
                addr,
                lock_path,
                shared,
                acceptor: Some(acceptor),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&lock_path);
                Err(e)
            }
        }
    }

    /// The bound port (also the lock file's name).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `ws://127.0.0.1:PORT`, the URL Claude Code dials.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `<lock_dir>/<port>.lock`.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The token a handshake must carry.
    pub fn auth_token(&self) -> &str {
        &self.shared.config.auth_token
    }

    /// Every JSON-RPC message received so far (requests, notifications and
    /// responses, from all connections), in arrival order.
    pub fn received(&self) -> Vec<Value> {
        lock(&self.shared.record).received.clone()
    }

    /// Every JSON-RPC message sent so far, in order.
    pub fn sent(&self) -> Vec<Value> {
        lock(&self.shared.record).sent.clone()
    }

    /// Every `tools/call` so far as (tool name, `arguments`), in order.
    pub fn tool_calls(&self) -> Vec<(String, Value)> {
        lock(&self.shared.record).tool_calls.clone()
    }

    /// Every well-formed WebSocket upgrade request, accepted or refused for
    /// the token, in arrival order.
    pub fn handshakes(&self) -> Vec<Handshake> {
        lock(&self.shared.record).handshakes.clone()
    }

    /// How many WebSocket handshakes were accepted (authorised) so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many handshakes were refused with 401 for a missing or wrong
    /// token.
    pub fn rejected(&self) -> usize {
        self.shared.rejected.load(Ordering::SeqCst)
    }

    /// Removes the lock file, stops accepting, closes open connections and
    /// joins the threads. Idempotent; also done on drop.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        let _ = std::fs::remove_file(&self.lock_path);
        server::stop(&self.shared.conns, self.addr, acceptor);
    }
}

impl Drop for Ide {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The lock file's contents, keys in the extension's order.
fn lock_json(config: &IdeConfig) -> Value {
    json!({
        "pid": config.pid.unwrap_or_else(std::process::id),
        "workspaceFolders": config.workspace_folders,
        "ideName": config.ide_name,
        "transport": "ws",
        "runningInWindows": false,
        "authToken": config.auth_token,
    })
}

fn write_lock(config: &IdeConfig, port: u16) -> io::Result<PathBuf> {
    let dir = &config.lock_dir;
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("`{}`: {e}", dir.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(with_path)?;
    // The temporary name must not end in `.lock`: Claude Code reads every
    // `*.lock` file and deletes the ones it cannot parse. tempfile creates
    // the file with mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".clp-ide-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(with_path)?;
    let text = serde_json::to_string(&lock_json(config)).map_err(io::Error::other)?;
    tmp.write_all(text.as_bytes()).map_err(with_path)?;
    tmp.as_file().sync_all().map_err(with_path)?;
    let path = dir.join(format!("{port}.lock"));
    tmp.persist(&path).map_err(|e| with_path(e.error))?;
    Ok(path)
}

/// Checks the token, records the handshake and picks the subprotocol. A
/// refusal is `401` with a short body, like the extension's WebSocket server
/// refusing a client.
// The large `Err` is tungstenite's callback signature, not ours to shrink.
#[allow(clippy::result_large_err)]
fn check_handshake(
    shared: &Shared,
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let token = request
        .headers()
        .get(AUTH_HEADER)
        .map(|v| v.as_bytes().to_vec());
    let authorized = token.as_deref() == Some(shared.config.auth_token.as_bytes());
    lock(&shared.record).handshakes.push(Handshake {
        path: request.uri().to_string(),
        headers,
        authorized,
    });
    // Counted here, before the response goes out, so a client that has its
    // answer always sees itself counted.
    if authorized {
        shared.connections.fetch_add(1, Ordering::SeqCst);
    } else {
        shared.rejected.fetch_add(1, Ordering::SeqCst);
        let body = "Unauthorized\n";
        let mut refusal = ErrorResponse::new(Some(body.to_string()));
        *refusal.status_mut() = StatusCode::UNAUTHORIZED;
        let h = refusal.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Err(refusal);
    }
    let offers_mcp = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if offers_mcp {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(response)
}

// The closure handed to tungstenite returns its large `ErrorResponse`.
#[allow(clippy::result_large_err)]
fn serve_connection(stream: TcpStream, shared: &Shared) {
    if stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).is_err() {
        return;
    }
    let callback = |req: &Request, resp: Response| check_handshake(shared, req, resp);
    // Anything that is not a well-formed upgrade fails here and the
    // connection just closes.
    let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else {
        return;
    };
    if ws.get_ref().set_read_timeout(None).is_err() {
        return;
    }
    let mut conn = Connection::default();
    while !shared.conns.stopping() {
        let text = match ws.read() {
            Ok(Message::Text(text)) => text,
            // tungstenite queues the pong (and the close reply); flush now
            // instead of on the next read.
            Ok(Message::Ping(_) | Message::Close(_)) => {
                if ws.flush().is_err() {
                    return;
                }
                continue;
            }
            Ok(_) => continue,
            Err(_) => return,
        };
        for out in conn.handle(shared, text.as_str()) {
            if send(&mut ws, shared, &out).is_err() {
                return;
            }
        }
    }
}

fn send(ws: &mut WebSocket<TcpStream>, shared: &Shared, msg: &Value) -> tungstenite::Result<()> {
    lock(&shared.record).sent.push(msg.clone());
    ws.send(Message::text(msg.to_string()))
}

/// Per-connection MCP state.
#[derive(Default)]
struct Connection {
    /// `openDiff` requests still waiting for their tab to close:
    /// (`tab_name`, request id).
    open_diffs: Vec<(String, Value)>,
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn text_content(texts: &[&str]) -> Value {
    let blocks: Vec<Value> = texts
        .iter()
        .map(|t| json!({"type": "text", "text": t}))
        .collect();
    json!({ "content": blocks })
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}

impl Connection {
    /// Answers one text frame: the messages to send, in order.
    fn handle(&mut self, shared: &Shared, text: &str) -> Vec<Value> {
        let msg: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return vec![error(&Value::Null, PARSE_ERROR, &e.to_string())],
        };
        lock(&shared.record).received.push(msg.clone());
        let Some(obj) = msg.as_object() else {
            // Batches are gone from MCP since 2025-06-18.
            return vec![error(&Value::Null, INVALID_REQUEST, "not a JSON object")];
        };
        let Some(method) = obj.get("method").and_then(Value::as_str) else {
            // A response to a request of ours; we send none.
            return Vec::new();
        };
        let Some(id) = obj.get("id") else {
            // Notifications (`notifications/initialized`, `ide_connected`,
            // `notifications/cancelled`, ...) need no answer.
            return Vec::new();
        };
        let params = obj.get("params").cloned().unwrap_or(Value::Null);
        match method {
            "initialize" => {
                let version = params
                    .get("protocolVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_PROTOCOL_VERSION);
                vec![result(
                    id,
                    json!({
                        "protocolVersion": version,
                        "capabilities": {"tools": {"listChanged": true}},
                        "serverInfo": {"name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION")},
                    }),
                )]
            }
            "ping" => vec![result(id, json!({}))],
            "tools/list" => vec![result(id, json!({ "tools": tool_list() }))],
            "tools/call" => self.call_tool(shared, id, &params),
            _ => vec![error(
                id,
                METHOD_NOT_FOUND,
                &format!("Method not found: {method}"),
            )],
        }
    }

    fn call_tool(&mut self, shared: &Shared, id: &Value, params: &Value) -> Vec<Value> {
        let Some(name) = str_arg(params, "name") else {
            return vec![error(id, INVALID_PARAMS, "tools/call needs a tool name")];
        };
        let args = params
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| json!({}));
        lock(&shared.record)
            .tool_calls
            .push((name.to_string(), args.clone()));
        match name {
            "getDiagnostics" => {
                let text = shared.config.diagnostics.to_string();
                vec![result(id, text_content(&[&text]))]
            }
            "openDiff" => match shared.config.open_diff {
                OpenDiffAnswer::WaitForClose => {
                    let tab = str_arg(&args, "tab_name").unwrap_or_default();
                    self.open_diffs.push((tab.to_string(), id.clone()));
                    Vec::new()
                }
                OpenDiffAnswer::Save => {
                    let contents = str_arg(&args, "new_file_contents").unwrap_or_default();
                    vec![result(id, text_content(&["FILE_SAVED", contents]))]
                }
                OpenDiffAnswer::Reject => vec![result(id, text_content(&["DIFF_REJECTED"]))],
            },
            "close_tab" => {
                let tab = str_arg(&args, "tab_name").unwrap_or_default();
                let (closed, open) = std::mem::take(&mut self.open_diffs)
                    .into_iter()
                    .partition(|(t, _)| t == tab);
                self.open_diffs = open;
                let mut out = tab_closed(closed);
                out.push(result(id, text_content(&["TAB_CLOSED"])));
                out
            }
            "closeAllDiffTabs" => {
                let closed = std::mem::take(&mut self.open_diffs);
                let summary = format!("CLOSED_{}_DIFF_TABS", closed.len());
                let mut out = tab_closed(closed);
                out.push(result(id, text_content(&[&summary])));
                out
            }
            "executeCode" => {
                let mut answer = text_content(&["No active Jupyter notebook"]);
                answer["isError"] = json!(true);
                vec![result(id, answer)]
            }
            _ => vec![error(id, INVALID_PARAMS, &format!("Unknown tool: {name}"))],
        }
    }
}

/// The answers to `openDiff` calls whose tab was just closed.
fn tab_closed(diffs: Vec<(String, Value)>) -> Vec<Value> {
    diffs
        .into_iter()
        .map(|(_, id)| result(&id, text_content(&["TAB_CLOSED"])))
        .collect()
}

/// JSON Schema of a tool's input, in the draft-07 shape the extension's
/// schemas (zod) produce.
fn input_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
        "$schema": "http://json-schema.org/draft-07/schema#",
    })
}

fn tool(name: &str, description: &str, input_schema: Value) -> Value {
    json!({"name": name, "description": description, "inputSchema": input_schema})
}

fn tool_list() -> Vec<Value> {
    let string = |d: &str| json!({"type": "string", "description": d});
    vec![
        tool(
            "getDiagnostics",
            "Get language diagnostics from the IDE",
            input_schema(
                json!({"uri": string("File URI to get diagnostics for; all files when omitted")}),
                &[],
            ),
        ),
        tool(
            "openDiff",
            "Open a diff view of proposed changes and wait for the user to act on it",
            input_schema(
                json!({
                    "old_file_path": string("Path of the file before the change"),
                    "new_file_path": string("Path of the file after the change"),
                    "new_file_contents": string("Proposed contents of the file"),
                    "tab_name": string("Name of the diff tab"),
                }),
                &[
                    "old_file_path",
                    "new_file_path",
                    "new_file_contents",
                    "tab_name",
                ],
            ),
        ),
        tool(
            "closeAllDiffTabs",
            "Close all diff tabs",
            input_schema(json!({}), &[]),
        ),
        tool(
            "close_tab",
            "Close a tab by name",
            input_schema(
                json!({"tab_name": string("Name of the tab")}),
                &["tab_name"],
            ),
        ),
        tool(
            "executeCode",
            "Execute code in the Jupyter kernel of the current notebook",
            input_schema(json!({"code": string("Code to run")}), &["code"]),
        ),
    ]
}

#[cfg(test)]
mod tests;
