//! The filtering HTTP proxy: `CONNECT host:port` tunnels and absolute-form HTTP
//! requests, each checked against the allowlist, resolved with the rebinding check,
//! logged, and refused with `403 Forbidden` and a one-line reason.
//!
//! The policy itself (pinned destinations, IP literals, names, the address check, the
//! log) is the step this proxy shares with the SOCKS server, described in `dial.rs`;
//! this module only speaks HTTP. [`ProxyConfig`] configures both.
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

use crate::dial::{Dest, Failure};
use crate::log::DecisionLog;
use crate::policy::{Allowlist, Host};
use crate::resolve::Resolver;
use crate::serve::{spawn_server, Stop};
use crate::{Error, ServerHandle, CONNECT_TIMEOUT};

type Body = BoxBody<Bytes, hyper::Error>;

/// A destination always allowed and always connected to a fixed address (clp's
/// backend: `127.0.0.1:8080` asked of the proxy inside reaches the host's backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub(crate) host: Host,
    pub(crate) port: u16,
    pub(crate) target: SocketAddr,
}

impl Pinned {
    /// Pins `host:port` (a name or an IP literal, as requests name it) to `target`.
    pub fn new(host: &str, port: u16, target: SocketAddr) -> Result<Pinned, Error> {
        let host = Host::parse(host)
            .map_err(|reason| Error::AllowEntry(format!("`{host}:{port}`: {reason}")))?;
        Ok(Pinned { host, port, target })
    }
}

/// What the proxy (and the SOCKS server, [`crate::socks::serve_socks`]) lets through
/// and where it writes its decisions.
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

/// Runs the shared policy step; a failure becomes the response to send.
async fn open(config: &ProxyConfig, dest: &mut Dest) -> Result<TcpStream, Response<Body>> {
    config.open(dest).await.map_err(|failure| match failure {
        Failure::Denied(reason) => text(
            StatusCode::FORBIDDEN,
            format!("clp: {}:{} refused: {reason}\n", dest.host, dest.port),
        ),
        Failure::Unreachable { error, .. } => text(
            StatusCode::BAD_GATEWAY,
            format!("clp: {}:{} unreachable: {error}\n", dest.host, dest.port),
        ),
    })
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
        method: Method::CONNECT.to_string(),
        host,
        port,
    };
    let mut upstream = match open(config, &mut dest).await {
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
        method: req.method().to_string(),
        host: authority.host().to_owned(),
        port,
    };
    let upstream = match open(config, &mut dest).await {
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
