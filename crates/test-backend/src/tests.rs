//! End-to-end unit tests: start a [`Backend`] and talk raw HTTP/1.1 to it
//! over a `TcpStream`.

use super::*;
use std::io::{BufRead, Read};
use std::time::Duration;

/// A parsed response: status, lower-case headers, body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

fn connect(b: &Backend) -> BufReader<TcpStream> {
    let s = TcpStream::connect(b.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

fn send(conn: &mut BufReader<TcpStream>, raw: &str) {
    conn.get_mut().write_all(raw.as_bytes()).unwrap();
}

fn read_resp(conn: &mut BufReader<TcpStream>) -> Resp {
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').unwrap();
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    let mut body = vec![0; len];
    conn.read_exact(&mut body).unwrap();
    Resp {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn get(b: &Backend, path: &str) -> Resp {
    let mut c = connect(b);
    send(&mut c, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    read_resp(&mut c)
}

fn post_req(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Api-Key: k\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn post(b: &Backend, path: &str, body: &str) -> Resp {
    let mut c = connect(b);
    send(&mut c, &post_req(path, body));
    read_resp(&mut c)
}

/// Parses an SSE body into (event name, data JSON) pairs.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}

const HELLO: &str =
    r#"{"model":"my-model","max_tokens":10,"messages":[{"role":"user","content":"say pong"}]}"#;

#[test]
fn health_models_and_404() {
    let b = Backend::start(Config::default()).unwrap();
    assert!(b.url().starts_with("http://127.0.0.1:"));
    assert_eq!(b.url(), format!("http://127.0.0.1:{}", b.port()));

    let r = get(&b, "/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));

    for path in ["/v1/models", "/models", "/v1/models?limit=5"] {
        let r = get(&b, path);
        assert_eq!(r.status, 200, "{path}");
        let v = r.json();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["id"], "glm-flash-q4");
        assert_eq!(v["data"][0]["object"], "model");
        assert_eq!(v["data"][0]["owned_by"], "llamacpp");
    }

    let r = get(&b, "/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn loading_mode_is_switchable() {
    let b = Backend::start(Config {
        health: HealthMode::Loading,
        ..Config::default()
    })
    .unwrap();
    let r = get(&b, "/health");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        serde_json::json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})
    );
    assert_eq!(post(&b, "/v1/messages", HELLO).status, 503);
    b.set_health(HealthMode::Ok);
    assert_eq!(b.health(), HealthMode::Ok);
    assert_eq!(get(&b, "/health").status, 200);
}

#[test]
fn non_streaming_message_and_logging() {
    let dir = std::env::temp_dir().join(format!("clp-test-backend-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let _ = std::fs::remove_file(&log);
    let b = Backend::start(Config {
        reply_text: "hello there".into(),
        log_file: Some(log.clone()),
        ..Config::default()
    })
    .unwrap();
    let r = post(&b, "/v1/messages?beta=true", HELLO);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "my-model");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["content"][0]["text"], "hello there");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let reqs = b.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/messages");
    assert_eq!(reqs[0].query.as_deref(), Some("beta=true"));
    assert_eq!(reqs[0].header("X-API-KEY"), Some("k"));
    assert_eq!(reqs[0].body, HELLO);
    assert_eq!(reqs[0].json.as_ref().unwrap()["model"], "my-model");
    assert_eq!(b.requests_to("/v1/messages").len(), 1);

    let lines = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 1);
    let logged: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(logged["path"], "/v1/messages");
    assert_eq!(logged["json"]["model"], "my-model");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn streaming_message_has_full_sse_sequence() {
    let b = Backend::start(Config::default()).unwrap();
    let body = r#"{"model":"m1","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = post(&b, "/v1/messages", body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = sse_events(&r.body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let order: Vec<&str> = names.iter().copied().filter(|n| *n != "ping").collect();
    let expected_prefix = ["message_start", "content_block_start"];
    assert_eq!(&order[..2], &expected_prefix);
    assert_eq!(
        &order[order.len() - 3..],
        &["content_block_stop", "message_delta", "message_stop"]
    );
    assert_eq!(events[0].1["message"]["model"], "m1");
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(text, "pong");
    let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn keep_alive_and_chunked_bodies() {
    let b = Backend::start(Config::default()).unwrap();
    let mut c = connect(&b);
    // Two requests on one connection, the second one chunked.
    send(&mut c, &post_req("/v1/messages", HELLO));
    let r1 = read_resp(&mut c);
    assert_eq!(r1.status, 200);
    assert_eq!(r1.header("connection"), Some("keep-alive"));
    let (a, z) = HELLO.split_at(20);
    send(
        &mut c,
        &format!(
            "POST /v1/messages/count_tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{z}\r\n0\r\n\r\n",
            a.len(),
            z.len()
        ),
    );
    let r2 = read_resp(&mut c);
    assert_eq!(r2.status, 200);
    assert!(r2.json()["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(b.requests()[1].body, HELLO);

    // Connection: close is honoured.
    send(
        &mut c,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let r3 = read_resp(&mut c);
    assert_eq!(r3.header("connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap(), 0);
}

fn tool_request(stream: bool, messages: &Value) -> String {
    serde_json::json!({
        "model": "glm-flash-q4",
        "stream": stream,
        "max_tokens": 100,
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "messages": messages,
    })
    .to_string()
}

#[test]
fn bash_tool_script_round_trip() {
    let b = Backend::start(Config {
        script: Some(ToolScript::Bash {
            command: "echo hi > /tmp/x".into(),
        }),
        ..Config::default()
    })
    .unwrap();
    let first = serde_json::json!([{"role": "user", "content": "go"}]);

    // Non-streaming: tool_use.
    let v = post(&b, "/v1/messages", &tool_request(false, &first)).json();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "Bash");
    assert_eq!(block["input"]["command"], "echo hi > /tmp/x");
    assert_eq!(block["input"]["description"], SCRIPTED_DESCRIPTION);
    let tool_id = block["id"].as_str().unwrap().to_string();

    // Streaming: tool_use via input_json_delta.
    let r = post(&b, "/v1/messages", &tool_request(true, &first));
    let events = sse_events(&r.body);
    let start = &events
        .iter()
        .find(|(n, _)| n == "content_block_start")
        .unwrap()
        .1;
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "Bash");
    let partial: String = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_string()
        })
        .collect();
    let input: Value = serde_json::from_str(&partial).unwrap();
    assert_eq!(input["command"], "echo hi > /tmp/x");
    let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");

    // A side request offering no tools gets plain text.
    let v = post(&b, "/v1/messages", HELLO).json();
    assert_eq!(v["content"][0]["text"], "pong");

    // With a tool_result in the conversation: TOOL_RESULT text.
    let second = serde_json::json!([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id,
            "content": [{"type": "text", "text": "done"}]}]},
    ]);
    let r = post(&b, "/v1/messages", &tool_request(true, &second));
    let text: String = sse_events(&r.body)
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "TOOL_RESULT:done");
    let v = post(&b, "/v1/messages", &tool_request(false, &second)).json();
    assert_eq!(v["content"][0]["text"], "TOOL_RESULT:done");
    assert_eq!(v["stop_reason"], "end_turn");
}

fn tools_request(stream: bool, tools: &[&str], messages: &Value) -> String {
    let tools: Vec<Value> = tools
        .iter()
        .map(|name| serde_json::json!({"name": name, "input_schema": {"type": "object"}}))
        .collect();
    serde_json::json!({
        "model": "glm-flash-q4",
        "stream": stream,
        "max_tokens": 100,
        "tools": tools,
        "messages": messages,
    })
    .to_string()
}

/// The text of a streamed reply.
fn streamed_text(body: &str) -> String {
    sse_events(body)
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn named_tool_script_calls_only_an_offered_tool() {
    const DIAG: &str = "mcp__ide__getDiagnostics";
    let b = Backend::start(Config {
        script: Some(ToolScript::Tool {
            name: DIAG.into(),
            input: serde_json::json!({"uri": "file:///w/a.rs"}),
        }),
        ..Config::default()
    })
    .unwrap();
    let first = serde_json::json!([{"role": "user", "content": "check"}]);

    // Offered: a tool_use of that tool, JSON and SSE.
    let v = post(
        &b,
        "/v1/messages",
        &tools_request(false, &["Bash", DIAG], &first),
    )
    .json();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = v["content"][0].clone();
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], DIAG);
    assert_eq!(block["input"], serde_json::json!({"uri": "file:///w/a.rs"}));
    let r = post(
        &b,
        "/v1/messages",
        &tools_request(true, &["Bash", DIAG], &first),
    );
    let events = sse_events(&r.body);
    let start = &events
        .iter()
        .find(|(n, _)| n == "content_block_start")
        .unwrap()
        .1;
    assert_eq!(start["content_block"]["name"], DIAG);
    let partial: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        serde_json::json!({"uri": "file:///w/a.rs"})
    );

    // Not offered (other tools are): NO_TOOL:<name>, JSON and SSE.
    let v = post(&b, "/v1/messages", &tools_request(false, &["Bash"], &first)).json();
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"][0]["text"], format!("{NO_TOOL_PREFIX}{DIAG}"));
    let r = post(&b, "/v1/messages", &tools_request(true, &["Bash"], &first));
    assert_eq!(streamed_text(&r.body), "NO_TOOL:mcp__ide__getDiagnostics");

    // No tools at all (a side request): the plain reply.
    assert_eq!(
        post(&b, "/v1/messages", HELLO).json()["content"][0]["text"],
        "pong"
    );

    // After the tool ran: TOOL_RESULT:<text>, offered or not.
    let second = serde_json::json!([
        {"role": "user", "content": "check"},
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"],
            "content": [{"type": "text", "text": "[{\"uri\":\"file:///w/a.rs\"}]"}]}]},
    ]);
    for tools in [&["Bash", DIAG][..], &["Bash"][..]] {
        let r = post(&b, "/v1/messages", &tools_request(true, tools, &second));
        assert_eq!(
            streamed_text(&r.body),
            r#"TOOL_RESULT:[{"uri":"file:///w/a.rs"}]"#
        );
    }
}

#[test]
fn bash_script_ignores_which_tools_are_offered() {
    let b = Backend::start(Config {
        script: Some(ToolScript::Bash {
            command: "true".into(),
        }),
        ..Config::default()
    })
    .unwrap();
    let first = serde_json::json!([{"role": "user", "content": "go"}]);
    let v = post(&b, "/v1/messages", &tools_request(false, &["Read"], &first)).json();
    assert_eq!(v["content"][0]["name"], "Bash");
}

#[test]
fn stop_closes_idle_connections_and_port() {
    let mut b = Backend::start(Config::default()).unwrap();
    let addr = b.addr();
    let mut idle = connect(&b);
    assert_eq!(get(&b, "/health").status, 200);
    b.stop();
    b.stop(); // idempotent
    let mut buf = Vec::new();
    assert_eq!(idle.read_to_end(&mut buf).unwrap_or(0), 0);
    // Nothing answers on the port any more.
    if let Ok(mut s) = TcpStream::connect(addr) {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(b"GET /health HTTP/1.1\r\n\r\n");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(out.is_empty());
    }
}

#[test]
fn malformed_json_is_400() {
    let b = Backend::start(Config::default()).unwrap();
    let r = post(&b, "/v1/messages", "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}
