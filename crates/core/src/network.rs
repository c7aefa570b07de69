//! The network policy of a session at level B in `allowlist` or `offline` mode: a
//! network namespace of its own whose loopback holds exactly the backend's port (relayed
//! to the host's backend), the IDE's ports (relayed to the host's) and clp's filtering
//! proxy; the environment and Claude Code settings that point everything at that proxy.
//!
//! Pure: the crate `clp-net` serves what this decides.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::host::Host;
use crate::model::{Level, NetworkMode};
use crate::net::HostPattern;
use crate::profile::Profile;

/// The proxy's port inside the session (moved up when the backend uses it).
pub const PROXY_PORT: u16 = 3128;

/// The SOCKS5 port inside the session, for tools that speak SOCKS (Claude Code's own
/// Bash sandbox wants one next to the HTTP proxy).
pub const SOCKS_PORT: u16 = 1080;

/// The token in a filtered session's command that the namespace helper replaces by its
/// own process id, so that a container engine can join its namespace
/// (`--network=ns:/proc/{helper-pid}/ns/net`).
pub const HELPER_PID: &str = "{helper-pid}";

/// The environment variable that gives the proxy a fixed resolver map (tests only):
/// `name=ip:port,...`.
pub const TEST_HOSTS_ENV: &str = "CLP_TEST_PROXY_HOSTS";

/// What the session's network namespace holds and where it leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkPlan {
    /// `allowlist` or `offline`.
    pub mode: NetworkMode,
    /// Loopback ports inside, each relayed to an address on the host.
    pub relays: Vec<Relay>,
    /// The HTTP proxy's port inside.
    pub proxy_port: u16,
    /// The SOCKS5 proxy's port inside.
    pub socks_port: u16,
    /// Hosts the proxies let through (empty offline).
    pub allow: Vec<HostPattern>,
    /// Hosts the proxies always let through to a fixed place: the backend.
    pub pinned: Vec<Pin>,
    /// A backend on another machine, reached through the proxies (resolved at launch).
    pub remote_backend: Option<(String, u16)>,
    /// Where every decision is logged (one JSON line each), outside anything the session
    /// can write.
    pub log: PathBuf,
    /// The test resolver map, when the environment gives one.
    pub test_hosts: Option<String>,
    /// What runs the namespace helper, before clp itself: rootless Podman's
    /// `podman unshare`, so that the namespace belongs to Podman's user namespace and
    /// its containers can join it.
    pub helper_prefix: Vec<String>,
}

/// A loopback port inside the session relayed to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relay {
    /// The port inside, on 127.0.0.1.
    pub port: u16,
    /// Where it leads on the host.
    pub target: SocketAddr,
    /// What it is for.
    pub what: &'static str,
}

/// A host the proxies always let through, to a fixed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// As requests name it.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Where it leads on the host.
    pub target: SocketAddr,
}

/// Whether `profile`'s session gets a network namespace of its own: levels B and C (with
/// Podman) in `allowlist` or `offline` mode.
pub fn filtered(profile: &Profile) -> bool {
    profile.isolation.level != Level::Env && profile.network.mode != NetworkMode::Open
}

/// The backend's port, when the backend is on this machine's loopback.
fn local_backend(profile: &Profile) -> Option<(String, u16)> {
    let b = profile.backend.as_ref()?;
    b.is_local().then(|| (b.url.host(), b.url.port()))
}

/// The proxies' ports inside: the usual ones, moved up past the backend's.
pub fn ports(profile: &Profile) -> (u16, u16) {
    let taken = local_backend(profile).map(|(_, p)| p);
    let free = |mut p: u16| {
        while Some(p) == taken {
            p += 1;
        }
        p
    };
    (free(PROXY_PORT), free(SOCKS_PORT))
}

/// The network plan of a filtered session.
pub fn plan(profile: &Profile, host: &Host) -> Option<NetworkPlan> {
    if !filtered(profile) {
        return None;
    }
    let (proxy_port, socks_port) = ports(profile);
    let loopback = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut relays = Vec::new();
    let mut pinned = Vec::new();
    if let Some((name, port)) = local_backend(profile) {
        relays.push(Relay {
            port,
            target: loopback(port),
            what: "the backend",
        });
        for host_name in [name.as_str(), "127.0.0.1", "localhost"] {
            if !pinned.iter().any(|p: &Pin| p.host == host_name) {
                pinned.push(Pin {
                    host: host_name.to_owned(),
                    port,
                    target: loopback(port),
                });
            }
        }
    }
    for port in &host.ide_ports {
        if *port != proxy_port && *port != socks_port && !relays.iter().any(|r| r.port == *port) {
            relays.push(Relay {
                port: *port,
                target: loopback(*port),
                what: "an IDE",
            });
        }
    }
    let remote_backend = profile
        .backend
        .as_ref()
        .filter(|b| !b.is_local())
        .map(|b| (b.url.host(), b.url.port()));
    Some(NetworkPlan {
        mode: profile.network.mode,
        relays,
        proxy_port,
        socks_port,
        allow: match profile.network.mode {
            NetworkMode::Allowlist => profile.network.allow.clone(),
            _ => Vec::new(),
        },
        pinned,
        remote_backend,
        log: log_path(host, &profile.name),
        test_hosts: host.var(TEST_HOSTS_ENV).map(str::to_owned),
        helper_prefix: helper_prefix(profile, host),
    })
}

fn helper_prefix(profile: &Profile, host: &Host) -> Vec<String> {
    let rootless_podman = profile.isolation.level == Level::Container
        && host.uid != 0
        && host.engine(profile.container.engine) == crate::model::Engine::Podman;
    if !rootless_podman {
        return Vec::new();
    }
    let podman = host
        .program("podman")
        .map_or_else(|| "podman".to_owned(), |p| p.display().to_string());
    vec![podman, "unshare".into()]
}

/// The environment inside a filtered session: every proxy-aware tool uses clp's proxy,
/// except for the relayed loopback ports.
pub fn env(plan: &NetworkPlan) -> BTreeMap<String, String> {
    let proxy = format!("http://127.0.0.1:{}", plan.proxy_port);
    let mut no_proxy: Vec<String> = Vec::new();
    for r in &plan.relays {
        for h in ["127.0.0.1", "localhost"] {
            no_proxy.push(format!("{h}:{}", r.port));
        }
    }
    let no_proxy = no_proxy.join(",");
    let mut env = BTreeMap::new();
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        env.insert(k.to_owned(), proxy.clone());
    }
    env.insert(
        "ALL_PROXY".to_owned(),
        format!("socks5h://127.0.0.1:{}", plan.socks_port),
    );
    env.insert("NO_PROXY".to_owned(), no_proxy.clone());
    env.insert("no_proxy".to_owned(), no_proxy);
    env.insert("NODE_USE_ENV_PROXY".to_owned(), "1".to_owned());
    env
}

/// What `clp show` says about the network.
pub fn note(profile: &Profile) -> Option<String> {
    let net = &profile.network;
    let allowed = || {
        let list: Vec<&str> = net.allow.iter().map(|p| p.as_str()).collect();
        if list.is_empty() {
            String::new()
        } else {
            format!(", {}", list.join(", "))
        }
    };
    match (profile.isolation.level, net.mode) {
        // Level A has no boundary: nothing to say about an open network.
        (Level::Env, NetworkMode::Open) => None,
        (_, NetworkMode::Open) => Some(
            "network.mode `open`: the session reaches every host and every service on \
             this machine's loopback"
                .into(),
        ),
        (level @ (Level::Sandbox | Level::Container), mode) => Some(format!(
            "network.mode `{}`: {} a network of its own; reachable are the backend, the IDE \
             and, through clp's proxy, {}",
            mode_name(mode),
            if level == Level::Sandbox {
                "the whole session has"
            } else {
                "the container joins"
            },
            if mode == NetworkMode::Allowlist {
                format!("network.allow{}", allowed())
            } else {
                "nothing else".into()
            }
        )),
        (Level::Env, mode) => Some(format!(
            "network.mode `{}` at level `env` is enforced for Bash commands only, by Claude \
             Code's own sandbox (allowed: the backend{}); Claude Code itself is not \
             network-filtered without a boundary",
            mode_name(mode),
            if mode == NetworkMode::Allowlist {
                allowed()
            } else {
                String::new()
            }
        )),
    }
}

/// The TOML name of a network mode.
pub fn mode_name(mode: NetworkMode) -> &'static str {
    match mode {
        NetworkMode::Open => "open",
        NetworkMode::Allowlist => "allowlist",
        NetworkMode::Offline => "offline",
    }
}

/// One decision, as logged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// When, RFC 3339 in UTC.
    pub ts: String,
    /// The request's method (`CONNECT`, `GET`, ...), or `SOCKS5` for a SOCKS `CONNECT`.
    pub method: String,
    /// The host as requested, normalised when it parsed.
    pub host: String,
    /// The requested port.
    pub port: u16,
    /// `allow` or `deny`.
    pub decision: Decision,
    /// Why: "in network.allow", "not in network.allow", "resolves to a private address
    /// (10.0.0.5)", ...
    pub reason: String,
    /// The address connected to (allowed requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Why the connection failed, when an allowed destination could not be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of a request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Let through (the connection itself may still have failed: see `error`).
    Allow,
    /// Refused: `403 Forbidden`, or SOCKS reply `0x02`.
    Deny,
}

/// Where the network decisions of `profile` are logged: clp's state dir, outside the
/// profile's own (which the session can write).
pub fn log_path(host: &Host, profile: &str) -> PathBuf {
    host.state_dir
        .join("logs")
        .join(format!("{profile}.network.jsonl"))
}

/// The log's records, the last `limit` of them, refusals only unless `all`; lines that
/// do not parse are skipped.
pub fn records(text: &str, all: bool, limit: usize) -> Vec<Record> {
    let mut out: Vec<Record> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .filter(|r| all || r.decision == Decision::Deny || r.error.is_some())
        .collect();
    let skip = out.len().saturating_sub(limit);
    out.drain(..skip);
    out
}

/// A record as one line for the terminal.
pub fn record_line(r: &Record) -> String {
    let what = match (r.decision, &r.error) {
        (Decision::Deny, _) => "refused",
        (Decision::Allow, Some(_)) => "failed",
        (Decision::Allow, None) => "allowed",
    };
    let why = r.error.as_deref().unwrap_or(&r.reason);
    // The host is what the session asked for (a SOCKS5 name is any bytes): escape
    // sequences in it must not reach the terminal of `clp log`.
    crate::diag::printable(&format!(
        "{}  {what:<7}  {} {}:{}  {why}",
        r.ts, r.method, r.host, r.port
    ))
}
