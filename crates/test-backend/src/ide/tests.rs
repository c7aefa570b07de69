//! Tests of the stand-in IDE: a tungstenite client plays Claude Code's side
//! of the handshake and the MCP session.

use std::os::unix::fs::PermissionsExt;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;

use super::*;

type Client = WebSocket<TcpStream>;

fn start(dir: &Path, f: impl FnOnce(&mut IdeConfig)) -> Ide {
    let mut config = IdeConfig {
        workspace_folders: vec!["/work/project".into()],
        auth_token: "secret-token-123".into(),
        diagnostics: json!([{"uri": "file:///work/project/a.rs", "diagnostics": [
            {"message": "unused variable", "severity": "Warning",
             "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 5}},
             "source": "rustc"}]}]),
        ..IdeConfig::new(dir.join("home/.claude/ide"))
    };
    f(&mut config);
    Ide::start(config).unwrap()
}

/// Opens a handshake like Claude Code's: subprotocol `mcp`, the token header
/// when given. Returns the socket and the response's subprotocol, or the
/// refusal's status.
fn dial(ide: &Ide, token: Option<&str>) -> Result<(Client, Option<String>), u16> {
    let mut req = ide.url().into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    h.insert(
        "User-Agent",
        HeaderValue::from_static("claude-code/test (cli)"),
    );
    if let Some(token) = token {
        h.insert(AUTH_HEADER, HeaderValue::from_str(token).unwrap());
    }
    let stream = TcpStream::connect(ide.addr).unwrap();
    // Hang guard for every read below.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match tungstenite::client(req, stream) {
        Ok((ws, resp)) => {
            let proto = resp
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_string());
            Ok((ws, proto))
        }
        Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

fn send_json(ws: &mut Client, msg: &Value) {
    ws.send(Message::text(msg.to_string())).unwrap();
}

/// The next text frame as JSON.
fn recv_json(ws: &mut Client) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

fn call(ws: &mut Client, id: u64, method: &str, params: Value) -> Value {
    send_json(
        ws,
        &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
    );
    let answer = recv_json(ws);
    assert_eq!(answer["id"], id, "{answer}");
    assert_eq!(answer["jsonrpc"], "2.0");
    answer
}

fn notify(ws: &mut Client, method: &str, params: Value) {
    send_json(
        ws,
        &json!({"jsonrpc": "2.0", "method": method, "params": params}),
    );
}

#[test]
fn mcp_session_like_claude_code() {
    let tmp = tempfile::tempdir().unwrap();
    let ide = start(tmp.path(), |_| {});
    assert_eq!(ide.url(), format!("ws://127.0.0.1:{}", ide.port()));
    let (mut ws, proto) = dial(&ide, Some("secret-token-123")).unwrap();
    assert_eq!(proto.as_deref(), Some("mcp"));

    // The sequence captured from Claude Code 2.1.330.
    let init = call(
        &mut ws,
        0,
        "initialize",
        json!({"protocolVersion": "2025-11-25",
               "capabilities": {"roots": {"listChanged": true}, "elicitation": {}},
               "clientInfo": {"name": "claude-code", "version": "2.1.330"}}),
    );
    assert_eq!(
        init["result"],
        json!({"protocolVersion": "2025-11-25",
               "capabilities": {"tools": {"listChanged": true}},
               "serverInfo": {"name": "stand-in IDE", "version": env!("CARGO_PKG_VERSION")}})
    );
    notify(&mut ws, "notifications/initialized", Value::Null);
    notify(&mut ws, "ide_connected", json!({"pid": 4242}));
    // The notifications got no answer: the next frame answers tools/list.
    let list = call(&mut ws, 1, "tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, TOOL_NAMES);
    let diag = &tools[0];
    assert_eq!(diag["inputSchema"]["type"], "object");
    assert_eq!(diag["inputSchema"]["properties"]["uri"]["type"], "string");
    assert_eq!(diag["inputSchema"]["required"], json!([]));
    for t in tools {
        assert!(t["description"].is_string(), "{t}");
    }

    let answer = call(
        &mut ws,
        2,
        "tools/call",
        json!({"name": "getDiagnostics", "arguments": {"uri": "file:///work/project/a.rs"}}),
    );
    let content = answer["result"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    let text: Value = serde_json::from_str(content[0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text[0]["diagnostics"][0]["message"], "unused variable");

    let answer = call(
        &mut ws,
        3,
        "tools/call",
        json!({"name": "executeCode", "arguments": {"code": "1+1"}}),
    );
    assert_eq!(answer["result"]["isError"], true);
    assert_eq!(answer["result"]["content"][0]["type"], "text");

    assert_eq!(call(&mut ws, 4, "ping", Value::Null)["result"], json!({}));
    let answer = call(&mut ws, 5, "resources/list", json!({}));
    assert_eq!(answer["error"]["code"], -32601);
    let answer = call(
        &mut ws,
        6,
        "tools/call",
        json!({"name": "nope", "arguments": {}}),
    );
    assert_eq!(answer["error"]["code"], -32602);
    // String ids come back as strings.
    send_json(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": "abc", "method": "ping"}),
    );
    assert_eq!(recv_json(&mut ws)["id"], "abc");
    // Not JSON: a parse error with a null id, and nothing recorded.
    ws.send(Message::text("{oops")).unwrap();
    let answer = recv_json(&mut ws);
    assert_eq!(answer["error"]["code"], -32700);
    assert_eq!(answer["id"], Value::Null);

    let methods: Vec<String> = ide
        .received()
        .iter()
        .map(|m| m["method"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "ide_connected",
            "tools/list",
            "tools/call",
            "tools/call",
            "ping",
            "resources/list",
            "tools/call",
            "ping",
        ]
    );
    assert_eq!(ide.received()[2]["params"]["pid"], 4242);
    assert_eq!(
        ide.tool_calls(),
        vec![
            (
                "getDiagnostics".to_string(),
                json!({"uri": "file:///work/project/a.rs"})
            ),
            ("executeCode".to_string(), json!({"code": "1+1"})),
            ("nope".to_string(), json!({})),
        ]
    );
    // Every request got exactly one answer, plus the parse error.
    assert_eq!(ide.sent().len(), 9);
    assert_eq!(ide.connections(), 1);
    assert_eq!(ide.rejected(), 0);
    let hs = ide.handshakes();
    assert_eq!(hs.len(), 1);
    assert!(hs[0].authorized);
    assert_eq!(hs[0].path, "/");
    assert_eq!(hs[0].header("User-Agent"), Some("claude-code/test (cli)"));
    assert_eq!(
        hs[0].header("X-Claude-Code-Ide-Authorization"),
        Some("secret-token-123")
    );
}

#[test]
fn wrong_or_missing_token_is_refused_with_401() {
    let tmp = tempfile::tempdir().unwrap();
    let ide = start(tmp.path(), |_| {});
    assert_eq!(dial(&ide, Some("wrong")).err(), Some(401));
    assert_eq!(dial(&ide, None).err(), Some(401));
    assert_eq!(ide.rejected(), 2);
    assert_eq!(ide.connections(), 0);
    assert!(ide.handshakes().iter().all(|h| !h.authorized));
    // A plain HTTP request is no handshake: neither counted nor recorded.
    let mut s = TcpStream::connect(ide.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut out);
    assert_eq!(ide.rejected(), 2);
    assert_eq!(ide.handshakes().len(), 2);
    // The right token still gets in afterwards.
    assert!(dial(&ide, Some("secret-token-123")).is_ok());
    assert_eq!(ide.connections(), 1);
}

#[test]
fn lock_file_is_the_extensions_and_goes_away_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let ide = start(tmp.path(), |c| c.pid = Some(77));
    let dir = tmp.path().join("home/.claude/ide");
    let path = ide.lock_path().to_path_buf();
    assert_eq!(path, dir.join(format!("{}.lock", ide.port())));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"pid":77,"workspaceFolders":["/work/project"],"ideName":"Visual Studio Code","transport":"ws","runningInWindows":false,"authToken":"secret-token-123"}}"#
        )
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir), 0o700);
    // Only the lock file is left in the directory: no temporary file.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1);

    let (mut ws, _) = dial(&ide, Some("secret-token-123")).unwrap();
    drop(ide);
    assert!(!path.exists());
    // The open connection was closed with the server.
    assert!(ws.read().is_err());
}

#[test]
fn default_pid_and_token() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Ide::start(IdeConfig::new(tmp.path())).unwrap();
    let b = Ide::start(IdeConfig::new(tmp.path())).unwrap();
    assert_ne!(a.auth_token(), b.auth_token());
    let lock: Value = serde_json::from_slice(&std::fs::read(a.lock_path()).unwrap()).unwrap();
    assert_eq!(lock["pid"], std::process::id());
    assert_eq!(lock["authToken"], a.auth_token());
    assert_eq!(lock["ideName"], "Visual Studio Code");
    assert_eq!(lock["workspaceFolders"], json!([]));
}

fn open_diff(ws: &mut Client, id: u64, tab: &str) {
    send_json(
        ws,
        &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "openDiff", "arguments": {"old_file_path": "/w/a", "new_file_path": "/w/a",
                "new_file_contents": "new\n", "tab_name": tab}}}),
    );
}

fn texts(answer: &Value) -> Vec<&str> {
    answer["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap())
        .collect()
}

#[test]
fn open_diff_waits_until_its_tab_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let ide = start(tmp.path(), |_| {});
    let (mut ws, _) = dial(&ide, Some("secret-token-123")).unwrap();
    open_diff(&mut ws, 1, "tab-a");
    open_diff(&mut ws, 2, "tab-b");
    // No answer yet: the ping's answer comes first.
    assert_eq!(call(&mut ws, 3, "ping", json!({}))["result"], json!({}));
    send_json(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                "params": {"name": "close_tab", "arguments": {"tab_name": "tab-b"}}}),
    );
    let diff = recv_json(&mut ws);
    assert_eq!(diff["id"], 2);
    assert_eq!(texts(&diff), ["TAB_CLOSED"]);
    let closed = recv_json(&mut ws);
    assert_eq!(closed["id"], 4);
    assert_eq!(texts(&closed), ["TAB_CLOSED"]);
    open_diff(&mut ws, 5, "tab-c");
    send_json(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
                "params": {"name": "closeAllDiffTabs", "arguments": {}}}),
    );
    let ids: Vec<Value> = (0..3).map(|_| recv_json(&mut ws)["id"].clone()).collect();
    assert_eq!(ids, [json!(1), json!(5), json!(6)]);
    assert_eq!(texts(ide.sent().last().unwrap()), ["CLOSED_2_DIFF_TABS"]);
}

#[test]
fn open_diff_can_save_or_reject_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let saving = start(tmp.path(), |c| c.open_diff = OpenDiffAnswer::Save);
    let (mut ws, _) = dial(&saving, Some("secret-token-123")).unwrap();
    open_diff(&mut ws, 1, "t");
    assert_eq!(texts(&recv_json(&mut ws)), ["FILE_SAVED", "new\n"]);
    let rejecting = start(tmp.path(), |c| c.open_diff = OpenDiffAnswer::Reject);
    let (mut ws, _) = dial(&rejecting, Some("secret-token-123")).unwrap();
    open_diff(&mut ws, 1, "t");
    assert_eq!(texts(&recv_json(&mut ws)), ["DIFF_REJECTED"]);
}

#[test]
fn websocket_pings_get_pongs() {
    let tmp = tempfile::tempdir().unwrap();
    let ide = start(tmp.path(), |_| {});
    let (mut ws, _) = dial(&ide, Some("secret-token-123")).unwrap();
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match ws.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
}
