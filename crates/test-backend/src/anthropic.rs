//! Request routing and the fake model: turns one parsed HTTP request into a
//! response for `/health`, `/v1/models`, `/v1/messages` (JSON or SSE) and
//! `/v1/messages/count_tokens`, including the scripted tool turn.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use crate::http::{Request, Response};
use crate::{Config, HealthMode, ToolScript};

/// Description put on the scripted `Bash` tool call.
pub const SCRIPTED_DESCRIPTION: &str = "scripted test command";

/// Prefix of the text reply once the conversation holds a `tool_result`.
pub const TOOL_RESULT_PREFIX: &str = "TOOL_RESULT:";

/// Prefix of the text reply when [`ToolScript::Tool`] names a tool that the
/// request does not offer; the tool's name follows.
pub const NO_TOOL_PREFIX: &str = "NO_TOOL:";

/// What the fake model answers with.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

impl Reply {
    fn stop_reason(&self) -> &'static str {
        match self {
            Reply::Text(_) => "end_turn",
            Reply::ToolUse { .. } => "tool_use",
        }
    }

    fn content_block(&self) -> Value {
        match self {
            Reply::Text(t) => json!({"type": "text", "text": t}),
            Reply::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        }
    }

    fn output_tokens(&self) -> u64 {
        match self {
            Reply::Text(t) => rough_tokens(t.len()),
            Reply::ToolUse { input, .. } => rough_tokens(input.to_string().len()),
        }
    }
}

/// Roughly four bytes per token, at least one.
fn rough_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

/// Routes one request. `health` is the current health mode; `ids` numbers
/// message and tool-use ids.
pub(crate) fn respond(
    req: &Request,
    json_body: Option<&Value>,
    config: &Config,
    health: HealthMode,
    ids: &AtomicU64,
) -> Response {
    if health == HealthMode::Loading {
        // llama-server answers every endpoint like this while loading.
        return Response::json(
            503,
            &json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}),
        );
    }
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    match (method, req.path.as_str()) {
        ("GET", "/health" | "/v1/health") => Response::json(200, &json!({"status": "ok"})),
        ("GET", "/v1/models" | "/models") => models(config),
        ("POST", "/v1/messages") => match json_body {
            Some(body) => messages(body, config, ids),
            None => error(
                400,
                "invalid_request_error",
                "request body is not valid JSON",
            ),
        },
        ("POST", "/v1/messages/count_tokens") => {
            Response::json(200, &json!({"input_tokens": rough_tokens(req.body.len())}))
        }
        _ => error(
            404,
            "not_found_error",
            &format!("no route for {} {}", req.method, req.path),
        ),
    }
}

fn models(config: &Config) -> Response {
    let data: Vec<Value> = config
        .models
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "object": "model",
                "created": 0,
                "owned_by": "llamacpp",
            })
        })
        .collect();
    Response::json(200, &json!({"object": "list", "data": data}))
}

/// The text of the last `tool_result` block in the conversation, flattened
/// (string content as is; text blocks joined with newlines), or `None` when
/// no message holds a `tool_result`.
pub(crate) fn last_tool_result(body: &Value) -> Option<String> {
    let messages = body.get("messages")?.as_array()?;
    let mut found = None;
    for msg in messages {
        let Some(blocks) = msg.get("content").and_then(Value::as_array) else {
            continue;
        };
        for block in blocks {
            if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                found = Some(flatten_content(block.get("content")));
            }
        }
    }
    found
}

fn flatten_content(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.clone()),
                other => other.get("text").and_then(Value::as_str).map(str::to_owned),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

/// Whether the request offers any tools: side requests Claude Code makes
/// (titles, quota probes) offer none and always get plain text.
fn offers_tools(body: &Value) -> bool {
    body.get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty())
}

/// Whether the request's `tools` array holds a tool named `name`.
fn offers_tool(body: &Value, name: &str) -> bool {
    body.get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| {
            tools
                .iter()
                .any(|t| t.get("name").and_then(Value::as_str) == Some(name))
        })
}

fn tool_use(ids: &AtomicU64, name: &str, input: Value) -> Reply {
    Reply::ToolUse {
        id: format!("toolu_test_{:04}", ids.fetch_add(1, Ordering::Relaxed)),
        name: name.to_string(),
        input,
    }
}

fn choose_reply(body: &Value, config: &Config, ids: &AtomicU64) -> Reply {
    let Some(script) = &config.script else {
        return Reply::Text(config.reply_text.clone());
    };
    if let Some(result) = last_tool_result(body) {
        return Reply::Text(format!("{TOOL_RESULT_PREFIX}{result}"));
    }
    if !offers_tools(body) {
        return Reply::Text(config.reply_text.clone());
    }
    match script {
        // `Bash` does not look for its name in `tools`: it predates
        // `Tool`, and the tests built on it expect the call whenever any
        // tool is offered.
        ToolScript::Bash { command } => tool_use(
            ids,
            "Bash",
            json!({"command": command, "description": SCRIPTED_DESCRIPTION}),
        ),
        ToolScript::Tool { name, input } if offers_tool(body, name) => {
            tool_use(ids, name, input.clone())
        }
        ToolScript::Tool { name, .. } => Reply::Text(format!("{NO_TOOL_PREFIX}{name}")),
    }
}

fn messages(body: &Value, config: &Config, ids: &AtomicU64) -> Response {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| config.models.first().cloned())
        .unwrap_or_else(|| "test-model".to_string());
    let input_tokens = rough_tokens(body.get("messages").map_or(0, |m| m.to_string().len()));
    let reply = choose_reply(body, config, ids);
    let id = format!("msg_test_{:04}", ids.fetch_add(1, Ordering::Relaxed));
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    if stream {
        Response::sse(sse_body(&id, &model, input_tokens, &reply))
    } else {
        Response::json(
            200,
            &json!({
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [reply.content_block()],
                "stop_reason": reply.stop_reason(),
                "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": reply.output_tokens()},
            }),
        )
    }
}

fn event(out: &mut String, name: &str, data: &Value) {
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

/// Splits `s` into at most two pieces at a char boundary, so clients have to
/// concatenate deltas.
fn halves(s: &str) -> Vec<&str> {
    let mut mid = s.len() / 2;
    while !s.is_char_boundary(mid) {
        mid += 1;
    }
    [&s[..mid], &s[mid..]]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect()
}

/// The full Anthropic SSE sequence for one single-block reply.
fn sse_body(id: &str, model: &str, input_tokens: u64, reply: &Reply) -> String {
    let mut out = String::new();
    event(
        &mut out,
        "message_start",
        &json!({
            "type": "message_start",
            "message": {
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            },
        }),
    );
    let (start_block, delta_kind, delta_field, payload) = match reply {
        Reply::Text(t) => (
            json!({"type": "text", "text": ""}),
            "text_delta",
            "text",
            t.clone(),
        ),
        Reply::ToolUse { input, .. } => {
            let mut block = reply.content_block();
            block["input"] = json!({});
            (block, "input_json_delta", "partial_json", input.to_string())
        }
    };
    event(
        &mut out,
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": start_block}),
    );
    event(&mut out, "ping", &json!({"type": "ping"}));
    for piece in halves(&payload) {
        event(
            &mut out,
            "content_block_delta",
            &json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": delta_kind, delta_field: piece},
            }),
        );
    }
    event(
        &mut out,
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    );
    event(
        &mut out,
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason(), "stop_sequence": null},
            "usage": {"input_tokens": input_tokens, "output_tokens": reply.output_tokens()},
        }),
    );
    event(&mut out, "message_stop", &json!({"type": "message_stop"}));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_tool_result_content() {
        let body = json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]},
        ]});
        assert_eq!(last_tool_result(&body).as_deref(), Some("a\nb"));
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": "plain", "is_error": true}]}]});
        assert_eq!(last_tool_result(&body).as_deref(), Some("plain"));
        assert_eq!(
            last_tool_result(&json!({"messages": [{"role": "user", "content": "x"}]})),
            None
        );
    }

    #[test]
    fn halves_respects_char_boundaries() {
        assert_eq!(halves("héllo").concat(), "héllo");
        assert_eq!(halves("a"), vec!["a"]);
        assert!(halves("").is_empty());
    }

    #[test]
    fn tool_use_stream_reassembles_input() {
        let reply = Reply::ToolUse {
            id: "toolu_1".into(),
            name: "Bash".into(),
            input: json!({"command": "echo hi", "description": SCRIPTED_DESCRIPTION}),
        };
        let sse = sse_body("msg_1", "m", 3, &reply);
        let mut partial = String::new();
        for line in sse.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                let v: Value = serde_json::from_str(data).unwrap();
                if let Some(p) = v["delta"]["partial_json"].as_str() {
                    partial.push_str(p);
                }
            }
        }
        let input: Value = serde_json::from_str(&partial).unwrap();
        assert_eq!(input["command"], "echo hi");
        assert!(sse.contains("\"stop_reason\":\"tool_use\""));
    }
}
