//! The SOCKS5 server on loopback, with curl (`--socks5-hostname`, as `socks5h://`) and
//! a raw client that shows the reply codes; local origins stand in for the internet.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::Duration;

use clp_net::socks::{serve_socks, serve_socks_with_timeout};

use crate::support::{get_over, Origin, Proxy};

const CONNECT: u8 = 1;
const BIND: u8 = 2;
const UDP_ASSOCIATE: u8 = 3;

/// A destination as the raw client sends it.
enum To<'a> {
    /// Address type 3: the proxy resolves (`socks5h`).
    Name(&'a str, u16),
    /// Address type 1 or 4.
    Ip(IpAddr, u16),
}

fn encode(to: &To) -> Vec<u8> {
    let (mut bytes, port) = match to {
        To::Name(name, port) => {
            let mut b = vec![3, u8::try_from(name.len()).expect("a short name")];
            b.extend_from_slice(name.as_bytes());
            (b, *port)
        }
        To::Ip(IpAddr::V4(ip), port) => ([&[1][..], &ip.octets()].concat(), *port),
        To::Ip(IpAddr::V6(ip), port) => ([&[4][..], &ip.octets()].concat(), *port),
    };
    bytes.extend_from_slice(&port.to_be_bytes());
    bytes
}

/// Offers "no authentication" and checks it is chosen.
fn greet(s: &mut TcpStream) {
    s.write_all(&[5, 1, 0]).expect("send the greeting");
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).expect("the method choice");
    assert_eq!(choice, [5, 0]);
}

/// Reads a reply: its code, after checking its shape.
fn read_reply_code(s: &mut TcpStream) -> u8 {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).expect("a reply before the timeout");
    assert_eq!((head[0], head[2]), (5, 0), "{head:?}");
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        other => panic!("bound address type {other}"),
    };
    let mut bound = vec![0u8; rest];
    s.read_exact(&mut bound).expect("the bound address");
    head[1]
}

/// Sends `command` for `to`; returns the reply code and the stream (a tunnel on 0).
fn request(proxy: &Proxy, command: u8, to: &To) -> (u8, TcpStream) {
    let mut s = proxy.dial();
    greet(&mut s);
    let mut bytes = vec![5, command, 0];
    bytes.extend_from_slice(&encode(to));
    s.write_all(&bytes).expect("send the request");
    let code = read_reply_code(&mut s);
    (code, s)
}

fn connect(proxy: &Proxy, to: &To) -> (u8, TcpStream) {
    request(proxy, CONNECT, to)
}

/// Asserts the server closed `s` (EOF or a reset), rather than leaving it open.
#[track_caller]
fn assert_closed(mut s: TcpStream) {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected bytes {:?}", &buf[..n]),
        Err(e) => assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "still open: {e}"
        ),
    }
}

/// `curl --socks5-hostname PROXY URL`, or `None` (skipped) without curl.
fn curl(proxy: &Proxy, url: &str) -> Option<Output> {
    let have = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("curl").is_file()));
    if !have {
        if std::env::var_os("CLP_REQUIRE_ALL").is_some_and(|v| v == "1") {
            panic!("CLP_REQUIRE_ALL=1 but `curl` is not installed");
        }
        eprintln!("SKIPPED: `curl` is not installed");
        return None;
    }
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--noproxy", ""])
        .arg("--socks5-hostname")
        .arg(proxy.addr.to_string())
        .arg(url)
        .output()
        .expect("run curl");
    Some(output)
}

fn field(line: &serde_json::Value, key: &str) -> String {
    line[key].as_str().unwrap_or_default().to_owned()
}

#[test]
fn allowed_name_answers_through_curl_and_a_raw_client() {
    let origin = Origin::start("allowed");
    let proxy = Proxy::socks(&["allowed.test"], &[("allowed.test", origin.addr)], &[]);

    let (code, tunnel) = connect(&proxy, &To::Name("Allowed.Test.", 443));
    assert_eq!(code, 0);
    assert_eq!(
        get_over(tunnel, "allowed.test").body,
        "allowed GET /tunnelled HTTP/1.1 host=allowed.test"
    );

    if let Some(out) = curl(&proxy, "http://allowed.test/via-socks?q=1") {
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "allowed GET /via-socks?q=1 HTTP/1.1 host=allowed.test"
        );
    }

    let lines = proxy.log_lines();
    let line = &lines[0];
    assert_eq!(
        (
            field(line, "method"),
            field(line, "host"),
            line["port"].as_u64(),
            field(line, "decision"),
            field(line, "reason"),
            field(line, "addr"),
        ),
        (
            "SOCKS5".into(),
            "allowed.test".into(),
            Some(443),
            "allow".into(),
            "in network.allow (test host map)".into(),
            origin.addr.to_string(),
        )
    );
    assert_eq!(proxy.panics(), 0);
}

#[test]
fn blocked_name_is_refused_at_once_with_0x02_and_logged() {
    let allowed = Origin::start("allowed");
    let blocked = Origin::start("blocked");
    let proxy = Proxy::socks(
        &["allowed.test"],
        &[
            ("allowed.test", allowed.addr),
            ("blocked.test", blocked.addr),
        ],
        &[],
    );
    let (code, s) = connect(&proxy, &To::Name("blocked.test", 443));
    assert_eq!(code, 0x02);
    assert_closed(s);
    // The allowlist's default ports are 80 and 443 only.
    let (code, s) = connect(&proxy, &To::Name("allowed.test", 22));
    assert_eq!(code, 0x02);
    assert_closed(s);

    let curled = curl(&proxy, "http://blocked.test/");
    if let Some(out) = &curled {
        // 97: CURLE_PROXY, the proxy refused.
        assert_eq!(out.status.code(), Some(97), "{out:?}");
    }
    assert_eq!(blocked.connection_count(), 0);
    assert_eq!(allowed.connection_count(), 0);

    let lines = proxy.log_lines();
    let summary: Vec<(String, String, u64, String, String)> = lines
        .iter()
        .map(|l| {
            (
                field(l, "method"),
                field(l, "host"),
                l["port"].as_u64().unwrap_or_default(),
                field(l, "decision"),
                field(l, "reason"),
            )
        })
        .collect();
    let deny = |host: &str, port| {
        (
            "SOCKS5".to_owned(),
            host.to_owned(),
            port,
            "deny".to_owned(),
            "not in network.allow".to_owned(),
        )
    };
    let mut want = vec![deny("blocked.test", 443), deny("allowed.test", 22)];
    if curled.is_some() {
        want.push(deny("blocked.test", 80));
    }
    assert_eq!(summary, want);
    assert!(lines.iter().all(|l| l.get("addr").is_none()), "{lines:#?}");
}

#[test]
fn ip_literals_are_refused_unless_listed() {
    let origin = Origin::start("literal");
    let port = origin.addr.port();
    let closed = Proxy::socks(&["allowed.test"], &[], &[]);
    let v4: IpAddr = [127, 0, 0, 1].into();
    let v6: IpAddr = "::1".parse().expect("::1");
    for to in [
        To::Ip(v4, port),
        To::Ip(v6, port),
        // A literal sent as a name is still a literal.
        To::Name("127.0.0.1", port),
        To::Ip([10, 0, 0, 5].into(), 443),
    ] {
        let (code, s) = connect(&closed, &to);
        assert_eq!(code, 0x02);
        assert_closed(s);
    }
    let lines = closed.log_lines();
    let hosts: Vec<String> = lines.iter().map(|l| field(l, "host")).collect();
    assert_eq!(hosts, ["127.0.0.1", "[::1]", "127.0.0.1", "10.0.0.5"]);
    assert!(
        lines
            .iter()
            .all(|l| field(l, "reason") == "IP literal not in network.allow"),
        "{lines:#?}"
    );

    let open = Proxy::socks(&[&format!("127.0.0.1:{port}")], &[], &[]);
    let (code, tunnel) = connect(&open, &To::Ip(v4, port));
    assert_eq!(code, 0);
    assert!(get_over(tunnel, "x").body.starts_with("literal GET"));
    assert_eq!(origin.connection_count(), 1);
}

#[test]
fn localhost_on_the_allowlist_is_still_refused() {
    let origin = Origin::start("host-loopback");
    let port = origin.addr.port();
    // `localhost` goes through the system resolver (it is not in the test map).
    let proxy = Proxy::socks(&[&format!("localhost:{port}"), "localhost"], &[], &[]);
    let (code, s) = connect(&proxy, &To::Name("localhost", port));
    assert_eq!(code, 0x02);
    assert_closed(s);
    if let Some(out) = curl(&proxy, "http://localhost/") {
        assert_eq!(out.status.code(), Some(97), "{out:?}");
    }
    assert_eq!(origin.connection_count(), 0);
    let line = &proxy.log_lines()[0];
    assert!(
        field(line, "reason").starts_with("resolves to a loopback address ("),
        "{line}"
    );
}

#[test]
fn pinned_destination_needs_no_entry() {
    let backend = Origin::start("backend");
    let proxy = Proxy::socks(&[], &[], &[("127.0.0.1", 8080, backend.addr)]);
    let (code, tunnel) = connect(&proxy, &To::Ip([127, 0, 0, 1].into(), 8080));
    assert_eq!(code, 0);
    assert_eq!(
        get_over(tunnel, "127.0.0.1:8080").body,
        "backend GET /tunnelled HTTP/1.1 host=127.0.0.1:8080"
    );
    // Only that port is pinned.
    let (code, _) = connect(&proxy, &To::Ip([127, 0, 0, 1].into(), 8081));
    assert_eq!(code, 0x02);
    let reasons: Vec<String> = proxy
        .log_lines()
        .iter()
        .map(|l| field(l, "reason"))
        .collect();
    assert_eq!(reasons, ["pinned", "IP literal not in network.allow"]);
}

#[test]
fn bind_and_udp_associate_are_0x07_unknown_address_types_0x08() {
    let origin = Origin::start("unused");
    let proxy = Proxy::socks(&["allowed.test"], &[("allowed.test", origin.addr)], &[]);
    for command in [BIND, UDP_ASSOCIATE] {
        let (code, s) = request(&proxy, command, &To::Name("allowed.test", 443));
        assert_eq!(code, 0x07, "command {command}");
        assert_closed(s);
    }
    let mut s = proxy.dial();
    greet(&mut s);
    s.write_all(&[5, CONNECT, 0, 2, 1, 2, 3, 4, 0, 80])
        .expect("send");
    assert_eq!(read_reply_code(&mut s), 0x08);
    assert_closed(s);
    assert_eq!(origin.connection_count(), 0);
    // Protocol errors are not decisions: nothing is logged (like the proxy's 400s).
    assert!(proxy.log_lines().is_empty());
}

#[test]
fn a_client_without_no_authentication_gets_0xff() {
    let proxy = Proxy::socks(&["allowed.test"], &[], &[]);
    // Username/password (2) and GSSAPI (1) only.
    let mut s = proxy.dial();
    s.write_all(&[5, 2, 2, 1]).expect("send");
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).expect("the method choice");
    assert_eq!(choice, [5, 0xff]);
    assert_closed(s);
    // Offered among others, no authentication is chosen.
    let mut s = proxy.dial();
    s.write_all(&[5, 3, 2, 1, 0]).expect("send");
    s.read_exact(&mut choice).expect("the method choice");
    assert_eq!(choice, [5, 0]);
}

#[test]
fn garbage_and_truncated_handshakes_close_without_panics() {
    let origin = Origin::start("after");
    let proxy = Proxy::socks(&["allowed.test"], &[("allowed.test", origin.addr)], &[]);
    let garbage: [&[u8]; 7] = [
        b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
        b"CONNECT allowed.test:443 HTTP/1.1\r\n\r\n",
        // SOCKS4 CONNECT.
        &[4, 1, 0, 80, 127, 0, 0, 1, 0],
        &[5],
        &[5, 3, 0],
        &[0xff; 600],
        &[],
    ];
    for bytes in garbage {
        let mut s = proxy.dial();
        // The server may close (even reset) before all of this is written.
        let _ = s.write_all(bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty(), "{bytes:?}: replied {got:?}");
    }
    // Truncated after the greeting: the method reply only, then a close.
    let truncated: [&[u8]; 5] = [
        &[5, CONNECT, 0],
        &[5, CONNECT, 0, 1, 127, 0],
        &[5, CONNECT, 0, 3, 200, b'a', b'b'],
        &[5, CONNECT, 0, 3, 4, b'a', b'.', b't', b'e', 0],
        &[5, CONNECT, 0, 4, 0, 0, 0, 0, 0],
    ];
    for bytes in truncated {
        let mut s = proxy.dial();
        greet(&mut s);
        s.write_all(bytes).expect("send");
        s.shutdown(std::net::Shutdown::Write).expect("half-close");
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty(), "{bytes:?}: replied {got:?}");
    }
    // Odd but complete requests are judged like any other: refused by name.
    for name in ["", "a\0b", "x y", "\u{e9}.test"] {
        let (code, s) = connect(&proxy, &To::Name(name, 443));
        assert_eq!(code, 0x02, "{name:?}");
        assert_closed(s);
    }
    let mut s = proxy.dial();
    greet(&mut s);
    s.write_all(&[5, CONNECT, 0, 3, 2, 0xc3, 0x28, 1, 187])
        .expect("send");
    assert_eq!(read_reply_code(&mut s), 0x02);
    let reasons: Vec<String> = proxy
        .log_lines()
        .iter()
        .map(|l| field(l, "reason"))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| r.starts_with("invalid host name (")),
        "{reasons:?}"
    );

    // The server is unharmed.
    let (code, tunnel) = connect(&proxy, &To::Name("allowed.test", 443));
    assert_eq!(code, 0);
    assert!(get_over(tunnel, "allowed.test")
        .body
        .starts_with("after GET"));
    assert_eq!(proxy.panics(), 0);
}

#[test]
fn a_silent_or_slow_client_is_closed_after_the_handshake_timeout() {
    let proxy = Proxy::launch(
        &["allowed.test"],
        &[],
        &[],
        Box::new(|l, c| serve_socks_with_timeout(l, c, Duration::from_millis(300))),
    );
    let silent = proxy.dial();
    let mut greeted = proxy.dial();
    greet(&mut greeted);
    // A request dribbled a byte every 100 ms: without a deadline on the whole
    // request, each byte would restart the wait.
    let mut slow = proxy.dial();
    greet(&mut slow);
    let mut writer = slow.try_clone().expect("clone");
    let dripping = std::thread::spawn(move || {
        for b in [
            5u8, CONNECT, 0, 3, 200, b'a', b'b', b'c', b'd', b'e', b'f', b'g',
        ] {
            if writer.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert_closed(silent);
    assert_closed(greeted);
    assert_closed(slow);
    dripping.join().expect("the slow client");
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect
/// to it hangs until the connecting side gives up. Loopback only.
fn black_hole() -> (SocketAddr, Vec<TcpStream>, std::net::TcpListener) {
    use rustix::net::{bind, listen, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    bind(&fd, &SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
    listen(&fd, 0).expect("listen");
    let listener = std::net::TcpListener::from(fd);
    let addr = listener.local_addr().expect("addr");
    let mut queued = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => queued.push(s),
            Err(e) if e.kind() == ErrorKind::TimedOut => return (addr, queued, listener),
            Err(e) => panic!("connect to the black hole: {e}"),
        }
    }
    panic!("the accept queue never filled");
}

#[test]
fn unreachable_allowed_destinations_are_0x05_or_0x04() {
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    let (hole, _queued, _listener) = black_hole();
    let proxy = Proxy::launch(
        &["down.test", "hole.test"],
        &[("down.test", gone_addr), ("hole.test", hole)],
        &[],
        Box::new(|l, mut c| {
            c.connect_timeout = Duration::from_millis(300);
            serve_socks(l, c)
        }),
    );
    let (code, s) = connect(&proxy, &To::Name("down.test", 443));
    assert_eq!(code, 0x05, "connection refused");
    assert_closed(s);
    let (code, s) = connect(&proxy, &To::Name("hole.test", 443));
    assert_eq!(code, 0x04, "host unreachable (timed out)");
    assert_closed(s);

    let lines = proxy.log_lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for (line, error) in lines.iter().zip(["refused", "timed out"]) {
        assert_eq!(field(line, "decision"), "allow", "{line}");
        assert!(field(line, "error").contains(error), "{line}");
    }
}

#[test]
fn shutdown_closes_tunnels_and_handshakes_and_stops_accepting() {
    let origin = Origin::start("shut");
    let mut proxy = Proxy::socks(&["allowed.test"], &[("allowed.test", origin.addr)], &[]);
    let (code, tunnel) = connect(&proxy, &To::Name("allowed.test", 443));
    assert_eq!(code, 0);
    let mut halfway = proxy.dial();
    greet(&mut halfway);
    proxy.shutdown();
    assert_closed(tunnel);
    assert_closed(halfway);
    assert!(!crate::support::listening(proxy.addr));
}
