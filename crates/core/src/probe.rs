//! Asking the backend whether it is ready and what it serves (network I/O).
//!
//! llama-server answers `GET /health` with 503 while a model loads and 200 when ready,
//! and lists its models (ids and aliases) at `GET /v1/models`.

use std::time::Duration;

use serde_json::Value;

/// What a health probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// 200.
    Ready,
    /// 503: the server is up and loading a model.
    Loading,
    /// Another status.
    Status(u16),
    /// No answer.
    Unreachable(String),
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The agent for `url`: a loopback backend is asked directly, never through a proxy
/// the environment names (inside a filtered session that is clp's own proxy, and the
/// probe is there to check the direct relay).
fn agent_for(url: &str, timeout: Duration) -> ureq::Agent {
    let loopback = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(crate::net::is_loopback_host))
        .unwrap_or(false);
    if !loopback {
        return agent(timeout);
    }
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into()
}

/// `GET url` once.
pub fn health(url: &str, timeout: Duration) -> Health {
    match agent_for(url, timeout).get(url).call() {
        Ok(resp) => match resp.status().as_u16() {
            200 => Health::Ready,
            503 => Health::Loading,
            other => Health::Status(other),
        },
        Err(e) => Health::Unreachable(e.to_string()),
    }
}

/// The model ids and aliases a `GET url` (OpenAI-style `/v1/models`) lists.
pub fn models(url: &str, timeout: Duration) -> Result<Vec<String>, String> {
    let mut resp = agent_for(url, timeout)
        .get(url)
        .call()
        .map_err(|e| e.to_string())?;
    if resp.status().as_u16() != 200 {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let body: Value = resp
        .body_mut()
        .read_json()
        .map_err(|e| format!("not JSON: {e}"))?;
    Ok(model_ids(&body))
}

/// Ids and aliases from an OpenAI-style (`data[].id`) or llama-server (`models[].name`,
/// `aliases`) model list.
pub fn model_ids(body: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for list in ["data", "models"] {
        for m in body
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for key in ["id", "name", "model"] {
                if let Some(id) = m.get(key).and_then(Value::as_str) {
                    ids.push(id.to_owned());
                }
            }
            for alias in m
                .get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(a) = alias.as_str() {
                    ids.push(a.to_owned());
                }
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// The context a request to `model` may use, as llama-server reports it: the model's
/// `meta.n_ctx` in `GET models_url` (one entry per model, also with the management API),
/// else `default_generation_settings.n_ctx` at `GET /props`. `None` for a server that
/// says neither (not a llama-server).
pub fn server_context(
    base_url: &str,
    models_url: &str,
    model: Option<&str>,
    timeout: Duration,
) -> Option<u32> {
    let get = |url: &str| -> Option<Value> {
        let mut resp = agent_for(url, timeout).get(url).call().ok()?;
        if resp.status().as_u16() != 200 {
            return None;
        }
        resp.body_mut().read_json().ok()
    };
    let n = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    let listed = model.and_then(|m| {
        get(models_url)?
            .get("data")?
            .as_array()?
            .iter()
            .find(|e| e.get("id").and_then(Value::as_str) == Some(m))
            .and_then(|e| n(e.get("meta")?.get("n_ctx")?))
    });
    listed.or_else(|| {
        n(get(&format!("{base_url}/props"))?
            .get("default_generation_settings")?
            .get("n_ctx")?)
    })
}

/// The server's build as llama-server reports it at `GET /props` (`build_info`), if any.
pub fn server_build(base_url: &str, timeout: Duration) -> Option<String> {
    let mut resp = agent(timeout)
        .get(&format!("{base_url}/props"))
        .call()
        .ok()?;
    if resp.status().as_u16() != 200 {
        return None;
    }
    let body: Value = resp.body_mut().read_json().ok()?;
    let build = body.get("build_info").and_then(Value::as_str)?;
    let model = body
        .get("model_alias")
        .or_else(|| body.get("model_path"))
        .and_then(Value::as_str);
    Some(match model {
        Some(m) => format!("llama.cpp {build}, model {m}"),
        None => format!("llama.cpp {build}"),
    })
}

/// Sends `method url` with an optional body (JSON when it parses as JSON); any 2xx is
/// success.
pub fn request(
    method: &str,
    url: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let agent = agent(timeout);
    let body = body.unwrap_or_default();
    let json = serde_json::from_str::<Value>(body).is_ok();
    let content_type = if json {
        "application/json"
    } else {
        "text/plain"
    };
    let resp = match method {
        "GET" => agent.get(url).call(),
        "PUT" => agent
            .put(url)
            .header("content-type", content_type)
            .send(body),
        _ => agent
            .post(url)
            .header("content-type", content_type)
            .send(body),
    }
    .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}
