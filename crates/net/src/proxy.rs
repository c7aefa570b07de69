//! The filtering HTTP proxy: `CONNECT host:port` tunnels and absolute-form HTTP
//! requests, each checked against the allowlist, resolved with the rebinding check,
//! logged, and refused with `403 Forbidden` and a one-line reason.
//!
//! The order of checks for a request naming `host:port`:
//!
//! 1. A [`Pinned`] destination (clp's backend) is allowed and connected to its fixed
//!    address, without any other check.
//! 2. An IP literal is allowed only when an allowlist entry names that address; it is
//!    then connected to as written, without the address check (listing an address is
//!    the decision; the check exists for names, whose answers can change).
//! 3. A name must be on the [`Allowlist`]; then it is resolved. A test map entry is
//!    connected to as mapped. System answers in the ranges [`crate::addr::refused`]
//!    lists are dropped; the remaining addresses are tried in order, within
//!    [`CONNECT_TIMEOUT`] in all. Only refused answers: "resolves
//!    to a private address (10.0.0.5)"; no answer: "no address".
//!
//! Anything that is neither `CONNECT` nor an absolute-form `http://` request is a `400
//! Bad Request`. An allowed destination that cannot be reached is a `502 Bad Gateway`.
//! Tunnels have no idle timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::addr::refused;
use crate::log::{now_rfc3339, Decision, DecisionLog, Record};
use crate::policy::{Allowlist, Host};
use crate::resolve::{Answer, Resolver};
use crate::serve::{spawn_server, Stop};
use crate::{Error, ServerHandle, CONNECT_TIMEOUT};

type Body = BoxBody<Bytes, hyper::Error>;

/// A destination always allowed and always connected to a fixed address (clp's
/// backend: `127.0.0.1:8080` asked of the proxy inside reaches the host's backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    host: Host,
    port: u16,
    target: SocketAddr,
}

impl Pinned {
    /// Pins `host:port` (a name or an IP literal, as requests name it) to `target`.
    pub fn new(host: &str, port: u16, target: SocketAddr) -> Result<Pinned, Error> {
        let host = Host::parse(host)
            .map_err(|reason| Error::AllowEntry(format!("`{host}:{port}`: {reason}")))?;
        Ok(Pinned { host, port, target })
    }
}

/// What the proxy lets through and where it writes its decisions.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The `network.allow` entries.
    pub allow: Allowlist,
    /// Destinations always allowed, at fixed addresses.
    pub pinned: Vec<Pinned>,
    /// How names are resolved.
    pub resolver: Resolver,
    /// Where decisions are appended (none: not logged). Append failures are counted
    /// by [`DecisionLog::failures`], since the proxy has nowhere to report them.
    pub log: Option<Arc<DecisionLog>>,
    /// How long to wait for resolution plus the connection to a destination.
    pub connect_timeout: Duration,
}

impl ProxyConfig {
    /// A configuration allowing `allow`, with the system resolver, no pinned
    /// destinations, no log and the default connect timeout.
    pub fn new(allow: Allowlist) -> ProxyConfig {
        ProxyConfig {
            allow,
            pinned: Vec::new(),
            resolver: Resolver::system(),
            log: None,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }
}

/// Serves the proxy on `listener` (bound inside the namespace by the helper) until
/// the handle is shut down or dropped. Must be called inside a Tokio runtime.
pub fn serve_proxy(
    listener: std::net::TcpListener,
    config: ProxyConfig,
) -> Result<ServerHandle, Error> {
    let shared = Arc::new(config);
    spawn_server(listener, move |stream, _peer, stop| {
        serve_connection(stream, shared.clone(), stop)
    })
}

async fn serve_connection(stream: TcpStream, config: Arc<ProxyConfig>, mut stop: Stop) {
    let service_stop = stop.clone();
    let service = service_fn(move |req| handle(req, config.clone(), service_stop.clone()));
    let conn = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .title_case_headers(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stop.stopped() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// The outcome of the policy for one `host:port`.
enum Verdict {
    Allow {
        targets: Vec<SocketAddr>,
        reason: &'static str,
    },
    /// The reason, and what the resolver said when it failed.
    Deny(String, Option<String>),
}

/// Keeps the system resolver's acceptable answers, in order; refuses when none is.
fn judge(addrs: Vec<SocketAddr>) -> Verdict {
    let (ok, bad): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.into_iter().partition(|a| refused(a.ip()).is_none());
    if !ok.is_empty() {
        return Verdict::Allow {
            targets: ok,
            reason: "in network.allow",
        };
    }
    match bad.first().and_then(|a| Some((a.ip(), refused(a.ip())?))) {
        Some((ip, class)) => Verdict::Deny(format!("resolves to {class} ({ip})"), None),
        None => Verdict::Deny("no address".into(), None),
    }
}

/// A request's destination, as the log and the refusal name it.
struct Dest {
    method: Method,
    host: String,
    port: u16,
}

impl ProxyConfig {
    async fn decide(&self, host: &Host, port: u16) -> Verdict {
        if let Some(p) = self
            .pinned
            .iter()
            .find(|p| p.host == *host && p.port == port)
        {
            return Verdict::Allow {
                targets: vec![p.target],
                reason: "pinned",
            };
        }
        if !self.allow.allows(host, port) {
            let reason = match host {
                Host::Ip(_) => "IP literal not in network.allow",
                Host::Name(_) => "not in network.allow",
            };
            return Verdict::Deny(reason.into(), None);
        }
        let name = match host {
            Host::Ip(ip) => {
                return Verdict::Allow {
                    targets: vec![SocketAddr::new(*ip, port)],
                    reason: "IP literal in network.allow",
                }
            }
            Host::Name(name) => name,
        };
        let answer =
            match tokio::time::timeout(self.connect_timeout, self.resolver.resolve(name, port))
                .await
            {
                Ok(a) => a,
                Err(_) => {
                    return Verdict::Deny("no address".into(), Some("resolution timed out".into()))
                }
            };
        match answer {
            Answer::Mapped(addr) => Verdict::Allow {
                targets: vec![addr],
                reason: "in network.allow (test host map)",
            },
            Answer::Failed(e) => Verdict::Deny("no address".into(), Some(e.to_string())),
            Answer::Found(addrs) => judge(addrs),
        }
    }

    fn log(
        &self,
        dest: &Dest,
        decision: Decision,
        reason: &str,
        addr: Option<SocketAddr>,
        error: Option<String>,
    ) {
        if let Some(log) = &self.log {
            let _ = log.append(&Record {
                ts: now_rfc3339(),
                method: dest.method.to_string(),
                host: dest.host.clone(),
                port: dest.port,
                decision,
                reason: reason.to_owned(),
                addr: addr.map(|a| a.to_string()),
                error,
            });
        }
    }

    /// Runs the policy and connects: the open connection, or the response to send.
    async fn open(&self, dest: &mut Dest) -> Result<TcpStream, Response<Body>> {
        let host = match Host::parse(&dest.host) {
            Ok(h) => h,
            Err(why) => {
                let reason = format!("invalid host name ({why})");
                self.log(dest, Decision::Deny, &reason, None, None);
                return Err(refusal(dest, &reason));
            }
        };
        dest.host = host.to_string();
        let (targets, why) = match self.decide(&host, dest.port).await {
            Verdict::Deny(reason, error) => {
                self.log(dest, Decision::Deny, &reason, None, error);
                return Err(refusal(dest, &reason));
            }
            Verdict::Allow { targets, reason } => (targets, reason),
        };
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let mut last = None;
        for target in &targets {
            match tokio::time::timeout_at(deadline, TcpStream::connect(target)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    self.log(dest, Decision::Allow, why, Some(*target), None);
                    return Ok(stream);
                }
                Ok(Err(e)) => last = Some((*target, format!("connect: {e}"))),
                Err(_) => {
                    last = Some((*target, "connect: timed out".to_owned()));
                    break;
                }
            }
        }
        let (target, error) = match last {
            Some((target, error)) => (Some(target), error),
            None => (None, "no address to connect to".to_owned()),
        };
        self.log(dest, Decision::Allow, why, target, Some(error.clone()));
        Err(text(
            StatusCode::BAD_GATEWAY,
            format!("clp: {}:{} unreachable: {error}\n", dest.host, dest.port),
        ))
    }
}

async fn handle(
    req: Request<Incoming>,
    config: Arc<ProxyConfig>,
    stop: Stop,
) -> Result<Response<Body>, Infallible> {
    Ok(if req.method() == Method::CONNECT {
        connect(req, &config, stop).await
    } else {
        forward(req, &config, stop).await
    })
}

/// `CONNECT host:port`: connect first (so a failure is a proper status), then answer
/// 200 and join the upgraded connection to the destination.
async fn connect(req: Request<Incoming>, config: &ProxyConfig, mut stop: Stop) -> Response<Body> {
    let Some((host, Some(port))) = req
        .uri()
        .authority()
        .map(|a| (a.host().to_owned(), a.port_u16()))
    else {
        return text(StatusCode::BAD_REQUEST, "clp: CONNECT needs host:port\n");
    };
    let mut dest = Dest {
        method: Method::CONNECT,
        host,
        port,
    };
    let mut upstream = match config.open(&mut dest).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            () = stop.stopped() => {}
        }
    });
    Response::new(empty())
}

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// `GET http://host:port/path` and the like: forwarded in origin form over a new
/// connection, the response streamed back.
async fn forward(req: Request<Incoming>, config: &ProxyConfig, mut stop: Stop) -> Response<Body> {
    let uri = req.uri();
    let authority = match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(a)) => a.clone(),
        (Some("https"), _) => {
            return text(
                StatusCode::BAD_REQUEST,
                "clp: use CONNECT for https:// (this proxy does not speak TLS)\n",
            )
        }
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "clp: not a proxy request (expected CONNECT or an absolute http:// URL)\n",
            )
        }
    };
    let port = authority.port_u16().unwrap_or(80);
    let mut dest = Dest {
        method: req.method().clone(),
        host: authority.host().to_owned(),
        port,
    };
    let upstream = match config.open(&mut dest).await {
        Ok(s) => s,
        Err(response) => return response,
    };

    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = match path.parse::<Uri>() {
        Ok(u) => u,
        Err(_) => return text(StatusCode::BAD_REQUEST, "clp: invalid request path\n"),
    };
    strip_hop_by_hop(&mut parts.headers);
    let host_header = match authority.port() {
        Some(p) => format!("{}:{p}", authority.host()),
        None => authority.host().to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&host_header) {
        parts.headers.insert(header::HOST, v);
    }
    let request = Request::from_parts(parts, body);

    let handshake = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .title_case_headers(true)
        .handshake(TokioIo::new(upstream))
        .await;
    let (mut sender, conn) = match handshake {
        Ok(pair) => pair,
        Err(e) => return bad_gateway(&dest, &e),
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = conn => {}
            () = stop.stopped() => {}
        }
    });
    match sender.send_request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => bad_gateway(&dest, &e),
    }
}

/// Removes the fixed hop-by-hop headers and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn bad_gateway(dest: &Dest, e: &hyper::Error) -> Response<Body> {
    text(
        StatusCode::BAD_GATEWAY,
        format!("clp: {}:{} failed: {e}\n", dest.host, dest.port),
    )
}

/// The `403 Forbidden` for a refused destination.
fn refusal(dest: &Dest, reason: &str) -> Response<Body> {
    text(
        StatusCode::FORBIDDEN,
        format!("clp: {}:{} refused: {reason}\n", dest.host, dest.port),
    )
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| a.parse().unwrap_or_else(|e| panic!("{a}: {e}")))
            .collect()
    }

    fn denial(v: Verdict) -> String {
        match v {
            Verdict::Deny(reason, _) => reason,
            Verdict::Allow { targets, .. } => panic!("allowed: {targets:?}"),
        }
    }

    #[test]
    fn resolved_addresses_are_judged() {
        assert_eq!(
            denial(judge(addrs(&["10.0.0.5:443"]))),
            "resolves to a private address (10.0.0.5)"
        );
        assert_eq!(
            denial(judge(addrs(&[
                "[::ffff:169.254.169.254]:80",
                "127.0.0.1:80"
            ]))),
            "resolves to a link-local address (::ffff:169.254.169.254)"
        );
        assert_eq!(denial(judge(Vec::new())), "no address");
        match judge(addrs(&[
            "10.0.0.5:443",
            "[2606:4700::1]:443",
            "8.8.8.8:443",
        ])) {
            Verdict::Allow { targets, reason } => {
                assert_eq!(targets, addrs(&["[2606:4700::1]:443", "8.8.8.8:443"]));
                assert_eq!(reason, "in network.allow");
            }
            Verdict::Deny(r, _) => panic!("denied: {r}"),
        }
    }
}
