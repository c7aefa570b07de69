//! Fixtures: stand-in origin servers, a proxy (HTTP or SOCKS) on a background runtime
//! whose panics are counted, and a tiny HTTP/1.1 response reader for raw sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use clp_net::log::DecisionLog;
use clp_net::policy::Allowlist;
use clp_net::proxy::{serve_proxy, Pinned, ProxyConfig};
use clp_net::resolve::Resolver;
use clp_net::socks::serve_socks;
use clp_net::ServerHandle;

pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP server on 127.0.0.1 answering every request with
/// `NAME REQUEST-LINE host=HOST` and closing.
pub struct Origin {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl Origin {
    pub fn start(name: &'static str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an origin");
        let addr = listener.local_addr().expect("origin address");
        let connections = Arc::new(AtomicUsize::new(0));
        let c = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
                let Some(head) = read_head(&mut stream) else {
                    continue;
                };
                let line = head.lines().next().unwrap_or_default().to_owned();
                let host = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Host: ")
                            .or_else(|| l.strip_prefix("host: "))
                    })
                    .unwrap_or("-")
                    .to_owned();
                let body = format!("{name} {line} host={host}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Origin { addr, connections }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads up to the blank line ending a head; `None` on EOF or error first.
pub fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Reads a response head and its `Content-Length` body (or up to EOF without one; none
/// for a `CONNECT`'s 200, after which the stream is the tunnel).
pub fn read_reply(stream: &mut TcpStream, connect: bool) -> Reply {
    let head = read_head(stream).expect("a response head before the timeout");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            stream.read_exact(&mut body).expect("the body");
        }
        None if connect && status == 200 => {}
        None => {
            let _ = stream.read_to_end(&mut body);
        }
    }
    Reply {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The names of the threads that panicked, for the servers' runtimes to be checked.
static PANICKED: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Numbers the servers' runtimes, so that each counts its own panics.
static RUNTIMES: AtomicUsize = AtomicUsize::new(0);
const RUNTIME_PREFIX: &str = "clp-test-server-";

/// Records the panics of server threads (a panicking connection task does not stop
/// the server, so a test would not otherwise see it), then reports as usual.
fn count_server_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            if let Some(name) = thread.name().filter(|n| n.starts_with(RUNTIME_PREFIX)) {
                PANICKED
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(name.to_owned());
            }
            previous(info);
        }));
    });
}

/// A proxy served on 127.0.0.1 by a background runtime, logging to a temp dir.
pub struct Proxy {
    pub addr: SocketAddr,
    pub log: PathBuf,
    handle: Option<ServerHandle>,
    runtime: tokio::runtime::Runtime,
    thread_name: String,
    _dir: tempfile::TempDir,
}

/// Starts a server on a listener with a configuration (`serve_proxy`, `serve_socks`...).
pub type Serve = dyn FnOnce(TcpListener, ProxyConfig) -> Result<ServerHandle, clp_net::Error>;

impl Proxy {
    /// The HTTP proxy.
    pub fn start(
        allow: &[&str],
        hosts: &[(&str, SocketAddr)],
        pins: &[(&str, u16, SocketAddr)],
    ) -> Proxy {
        Proxy::launch(allow, hosts, pins, Box::new(serve_proxy))
    }

    /// The SOCKS5 server.
    pub fn socks(
        allow: &[&str],
        hosts: &[(&str, SocketAddr)],
        pins: &[(&str, u16, SocketAddr)],
    ) -> Proxy {
        Proxy::launch(allow, hosts, pins, Box::new(serve_socks))
    }

    /// A server started by `serve` with the configuration built from the lists.
    pub fn launch(
        allow: &[&str],
        hosts: &[(&str, SocketAddr)],
        pins: &[(&str, u16, SocketAddr)],
        serve: Box<Serve>,
    ) -> Proxy {
        count_server_panics();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("proxy.jsonl");
        let mut config = ProxyConfig::new(Allowlist::parse(allow).expect("allowlist"));
        config.resolver = Resolver::with_map(hosts.iter().copied()).expect("test map");
        config.log = Some(Arc::new(DecisionLog::open(&log).expect("log")));
        for (h, p, a) in pins {
            config.pinned.push(Pinned::new(h, *p, *a).expect("pin"));
        }
        let thread_name = format!(
            "{RUNTIME_PREFIX}{}",
            RUNTIMES.fetch_add(1, Ordering::SeqCst)
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(thread_name.clone())
            .enable_all()
            .build()
            .expect("runtime");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let handle = runtime
            .block_on(async { serve(listener, config) })
            .expect("serve the proxy");
        Proxy {
            addr: handle.local_addr(),
            log,
            handle: Some(handle),
            runtime,
            thread_name,
            _dir: dir,
        }
    }

    /// How many of this server's threads have panicked.
    pub fn panics(&self) -> usize {
        PANICKED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|n| **n == self.thread_name)
            .count()
    }

    pub fn dial(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to the proxy");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        s
    }

    /// Sends `CONNECT authority`; returns the reply and the stream (a tunnel on 200).
    pub fn connect(&self, authority: &str) -> (Reply, TcpStream) {
        let mut s = self.dial();
        write!(
            s,
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
        )
        .expect("send");
        let reply = read_reply(&mut s, true);
        (reply, s)
    }

    /// Sends a raw request line (`GET http://... HTTP/1.1`) with `Connection: close`.
    pub fn request(&self, line: &str, host: &str) -> Reply {
        let mut s = self.dial();
        write!(s, "{line}\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("send");
        read_reply(&mut s, false)
    }

    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .expect("read the log")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect()
    }

    pub fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            self.runtime.block_on(h.shutdown());
        }
    }
}

/// Sends a GET over an open tunnel and reads the origin's reply.
pub fn get_over(mut tunnel: TcpStream, host: &str) -> Reply {
    write!(
        tunnel,
        "GET /tunnelled HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send over the tunnel");
    read_reply(&mut tunnel, false)
}

/// Whether anything listens at `addr`. A connection to a free loopback port can succeed
/// by connecting to itself (the kernel may pick that very port as the source): that is
/// not a listener.
pub fn listening(addr: std::net::SocketAddr) -> bool {
    match std::net::TcpStream::connect(addr) {
        Ok(s) => s.local_addr().ok() != s.peer_addr().ok(),
        Err(_) => false,
    }
}
