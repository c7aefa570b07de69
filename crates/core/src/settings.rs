//! Claude Code's `settings.json` for a profile: the backend pinned in its `env` block,
//! the permission rules (Bash always asks), the level's sandbox settings and the
//! profile's own keys. Passed with `claude --settings` from a file clp owns.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::model::{Level, NetworkMode};
use crate::policy::{DEFAULT_ASK, DEFAULT_DENY, SECRET_HOME_PATHS};
use crate::profile::{Auth, Profile, Secret};

/// The variables that define the backend, pinned both in the environment and in the
/// settings file's `env` block (which outranks the environment and project settings).
pub fn backend_env(profile: &Profile) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    if let Some(backend) = &profile.backend {
        set("ANTHROPIC_BASE_URL", backend.url.as_str());
        set("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
        if backend.is_local() {
            // The per-request attribution block changes every request's prefix, which
            // defeats llama.cpp's prompt cache.
            set("CLAUDE_CODE_ATTRIBUTION_HEADER", "0");
        }
    }
    match &profile.auth {
        Auth::AuthToken { from } => {
            // An inherited key would be sent as `x-api-key` next to the bearer token.
            set("ANTHROPIC_API_KEY", "");
            if let Secret::Literal(t) = from {
                set("ANTHROPIC_AUTH_TOKEN", t);
            }
        }
        Auth::ApiKey { .. } => {}
        Auth::Oauth => return env,
    }
    let m = &profile.model;
    for (k, v) in [
        ("ANTHROPIC_MODEL", &m.default),
        ("ANTHROPIC_DEFAULT_OPUS_MODEL", &m.opus),
        ("ANTHROPIC_DEFAULT_SONNET_MODEL", &m.sonnet),
        ("ANTHROPIC_DEFAULT_HAIKU_MODEL", &m.haiku),
    ] {
        if let Some(v) = v {
            set(k, v);
        }
    }
    if let Some(c) = m.context {
        let budget = crate::context::budget(c);
        set("CLAUDE_CODE_MAX_CONTEXT_TOKENS", &c.to_string());
        if !profile.env.contains_key("CLAUDE_CODE_MAX_OUTPUT_TOKENS") {
            set("CLAUDE_CODE_MAX_OUTPUT_TOKENS", &budget.output.to_string());
        }
    }
    env
}

/// The settings.json object for `profile`.
pub fn render_settings(profile: &Profile) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert(
        "$schema".into(),
        json!("https://json.schemastore.org/claude-code-settings.json"),
    );
    for (k, v) in &profile.claude.settings {
        s.insert(k.clone(), v.clone());
    }
    let env = backend_env(profile);
    if !env.is_empty() {
        let mut merged = s
            .get("env")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in env {
            merged.insert(k, json!(v));
        }
        s.insert("env".into(), Value::Object(merged));
    }
    if let Auth::ApiKey {
        from: Secret::Command(cmd),
    } = &profile.auth
    {
        s.insert("apiKeyHelper".into(), json!(cmd));
    }
    if profile.backend.is_some() {
        // WebFetch first asks api.anthropic.com about each domain: with another backend
        // that leaks the domains there, and fails when the network is filtered.
        s.insert("skipWebFetchPreflight".into(), json!(true));
    }
    let safe = !profile.is_oauth() || profile.isolation.level != Level::Env;
    let p = &profile.permissions;
    if safe || !p.allow.is_empty() || !p.ask.is_empty() || !p.deny.is_empty() {
        let existing = s.get("permissions").and_then(Value::as_object).cloned();
        s.insert("permissions".into(), permissions(profile, safe, existing));
    }
    if profile.isolation.level == Level::Sandbox {
        s.insert("sandbox".into(), inner_sandbox_settings(profile));
    }
    if profile.network.mode != NetworkMode::Open && profile.isolation.level == Level::Env {
        // Level A has no OS boundary; the inner sandbox is the only network filter.
        s.insert("sandbox".into(), inner_sandbox_settings(profile));
    }
    s
}

/// The `permissions` block: the profile's rules on top of `existing` (from
/// `claude.settings`); with `safe`, Bash always asks, escalation is denied and neither
/// bypass nor auto mode can be switched on.
fn permissions(profile: &Profile, safe: bool, existing: Option<Map<String, Value>>) -> Value {
    let p = &profile.permissions;
    let mut perms = existing.unwrap_or_default();
    let rules = |defaults: &[&str], extra: &[String]| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in defaults
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
        {
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    };
    let (ask, deny): (&[&str], &[&str]) = if safe {
        (DEFAULT_ASK, DEFAULT_DENY)
    } else {
        (&[], &[])
    };
    // With clp's proxy in front, the allowlist is the network's rule: WebFetch to an
    // allowed domain need not ask (the proxy refuses the rest anyway).
    let mut extra_allow = p.allow.clone();
    if crate::network::filtered(profile) && profile.network.mode == NetworkMode::Allowlist {
        for pattern in profile.network.allow.iter().filter(|p| !p.is_ip()) {
            extra_allow.push(format!("WebFetch(domain:{})", pattern.domain()));
        }
    }
    // Bash must keep asking: an allow rule for Bash would answer before the ask.
    let allow: Vec<String> = rules(&[], &extra_allow)
        .into_iter()
        .filter(|r| !(safe && (r == "Bash" || r.starts_with("Bash("))))
        .collect();
    for (key, list) in [
        ("allow", allow),
        ("ask", rules(ask, &p.ask)),
        ("deny", rules(deny, &p.deny)),
    ] {
        if !list.is_empty() {
            perms.insert(key.into(), json!(list));
        }
    }
    if safe {
        // Auto mode lets the model approve its own tool calls: never with a local
        // model, and never for Bash.
        perms.insert("defaultMode".into(), json!("default"));
        perms.insert("disableBypassPermissionsMode".into(), json!("disable"));
        perms.insert("disableAutoMode".into(), json!("disable"));
    }
    Value::Object(perms)
}

/// Claude Code's own `sandbox` settings for a sandboxed profile: on, failing closed, never
/// auto-allowing Bash, secrets unreadable, the network limited to the profile's list.
pub fn inner_sandbox_settings(profile: &Profile) -> Value {
    let home = "~";
    let deny_read: Vec<String> = SECRET_HOME_PATHS
        .iter()
        .map(|p| format!("{home}/{p}"))
        .collect();
    let mut network = json!({});
    let mut domains: Vec<String> = Vec::new();
    if profile.network.mode != NetworkMode::Offline {
        for d in profile.network.allow.iter().map(|p| p.domain()) {
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
    }
    if let Some(b) = &profile.backend {
        let host = b.url.host();
        if !domains.contains(&host) {
            domains.push(host);
        }
    }
    network["allowedDomains"] = json!(domains);
    if profile.backend.as_ref().is_some_and(|b| b.is_local()) {
        network["allowLocalBinding"] = json!(false);
    }
    if crate::network::filtered(profile) {
        // The session has clp's proxies: Claude Code's Bash sandbox uses them instead
        // of starting its own, so the two filters are one.
        let (http, socks) = crate::network::ports(profile);
        network["httpProxyPort"] = json!(http);
        network["socksProxyPort"] = json!(socks);
    }
    json!({
        "enabled": true,
        "failIfUnavailable": true,
        "allowUnsandboxedCommands": false,
        "autoAllowBashIfSandboxed": false,
        "filesystem": { "denyRead": deny_read },
        "network": network,
    })
}

/// The settings object as file text.
pub fn settings_text(settings: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(settings).expect("settings serialize");
    text.push('\n');
    text
}

/// The first-launch `.claude.json` of a fresh config dir: onboarding done, and the
/// workspace trusted only when the profile says so.
pub fn seed_claude_json(profile: &Profile) -> String {
    let mut seed = json!({ "hasCompletedOnboarding": true });
    if profile.workspace.trust {
        seed["projects"] = json!({
            profile.workspace.path.display().to_string(): { "hasTrustDialogAccepted": true }
        });
    }
    let mut text = serde_json::to_string_pretty(&seed).expect("seed serializes");
    text.push('\n');
    text
}
