//! The proxy on loopback: local origins stand in for the internet, reached through the
//! test host map.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use crate::support::{get_over, Origin, Proxy};

#[test]
fn allowed_host_answers_through_connect_and_absolute_form() {
    let origin = Origin::start("allowed");
    let proxy = Proxy::start(&["allowed.test"], &[("allowed.test", origin.addr)], &[]);

    let (reply, tunnel) = proxy.connect("allowed.test:443");
    assert_eq!(reply.status, 200, "{reply:?}");
    let inner = get_over(tunnel, "allowed.test");
    assert_eq!(
        inner.body,
        "allowed GET /tunnelled HTTP/1.1 host=allowed.test"
    );

    let reply = proxy.request("GET http://Allowed.Test/path?q=1 HTTP/1.1", "ignored.test");
    assert_eq!(reply.status, 200, "{reply:?}");
    // Forwarded in origin form, with the Host header taken from the URL.
    assert_eq!(
        reply.body,
        "allowed GET /path?q=1 HTTP/1.1 host=Allowed.Test"
    );
    assert_eq!(origin.connection_count(), 2);
}

#[test]
fn blocked_host_is_403_with_the_reason_and_never_contacted() {
    let allowed = Origin::start("allowed");
    let blocked = Origin::start("blocked");
    let proxy = Proxy::start(
        &["allowed.test"],
        &[
            ("allowed.test", allowed.addr),
            ("blocked.test", blocked.addr),
        ],
        &[],
    );
    let (reply, _) = proxy.connect("blocked.test:443");
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(
        reply.body,
        "clp: blocked.test:443 refused: not in network.allow\n"
    );
    assert!(reply.head.contains("text/plain"), "{reply:?}");

    let reply = proxy.request("GET http://blocked.test/ HTTP/1.1", "blocked.test");
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(
        reply.body,
        "clp: blocked.test:80 refused: not in network.allow\n"
    );

    // The allowlist's default ports are 80 and 443 only.
    let (reply, _) = proxy.connect("allowed.test:22");
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(blocked.connection_count(), 0);
    assert_eq!(allowed.connection_count(), 0);
}

#[test]
fn ip_literal_is_403_unless_listed_literally() {
    let origin = Origin::start("literal");
    let port = origin.addr.port();
    let closed = Proxy::start(&["allowed.test"], &[], &[]);
    let (reply, _) = closed.connect(&format!("127.0.0.1:{port}"));
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(
        reply.body,
        format!("clp: 127.0.0.1:{port} refused: IP literal not in network.allow\n")
    );
    let reply = closed.request(&format!("GET http://[::1]:{port}/ HTTP/1.1"), "x");
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.body.contains("[::1]"), "{reply:?}");

    let open = Proxy::start(&[&format!("127.0.0.1:{port}")], &[], &[]);
    let (reply, tunnel) = open.connect(&format!("127.0.0.1:{port}"));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(get_over(tunnel, "x").body.starts_with("literal GET"));
    assert_eq!(origin.connection_count(), 1);
}

#[test]
fn localhost_on_the_allowlist_is_still_refused() {
    let origin = Origin::start("host-loopback");
    let port = origin.addr.port();
    // `localhost` goes through the system resolver (it is not in the test map).
    let proxy = Proxy::start(&[&format!("localhost:{port}"), "localhost"], &[], &[]);
    let (reply, _) = proxy.connect(&format!("localhost:{port}"));
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(
        reply.body.starts_with(&format!(
            "clp: localhost:{port} refused: resolves to a loopback address ("
        )),
        "{reply:?}"
    );
    let reply = proxy.request("GET http://localhost/ HTTP/1.1", "localhost");
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(origin.connection_count(), 0);
}

#[test]
fn wildcards_cover_subdomains_not_the_apex() {
    let origin = Origin::start("wild");
    let proxy = Proxy::start(
        &["*.wild.test"],
        &[("a.b.wild.test", origin.addr), ("wild.test", origin.addr)],
        &[],
    );
    let (reply, tunnel) = proxy.connect("a.b.wild.test:443");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(get_over(tunnel, "a.b.wild.test")
        .body
        .starts_with("wild GET"));
    let (reply, _) = proxy.connect("wild.test:443");
    assert_eq!(reply.status, 403, "{reply:?}");
}

#[test]
fn pinned_destination_needs_no_entry_and_skips_the_address_check() {
    let backend = Origin::start("backend");
    let proxy = Proxy::start(&[], &[], &[("127.0.0.1", 8080, backend.addr)]);
    let reply = proxy.request("POST http://127.0.0.1:8080/v1/messages HTTP/1.1", "x");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body,
        "backend POST /v1/messages HTTP/1.1 host=127.0.0.1:8080"
    );
    // Only that port is pinned.
    let (reply, _) = proxy.connect("127.0.0.1:8081");
    assert_eq!(reply.status, 403, "{reply:?}");
}

#[test]
fn unreachable_allowed_destination_is_502() {
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = gone.local_addr().expect("addr");
    drop(gone);
    let proxy = Proxy::start(&["down.test"], &[("down.test", addr)], &[]);
    let (reply, _) = proxy.connect("down.test:443");
    assert_eq!(reply.status, 502, "{reply:?}");
    let line = &proxy.log_lines()[0];
    assert_eq!(line["decision"], "allow");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "{line}"
    );
}

#[test]
fn anything_but_connect_or_absolute_http_is_400() {
    let proxy = Proxy::start(&["allowed.test"], &[], &[]);
    for line in [
        "GET / HTTP/1.1",
        "GET https://allowed.test/ HTTP/1.1",
        "GET ftp://allowed.test/ HTTP/1.1",
    ] {
        let reply = proxy.request(line, "allowed.test");
        assert_eq!(reply.status, 400, "{line}: {reply:?}");
    }
    let mut s = proxy.dial();
    write!(
        s,
        "CONNECT allowed.test HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
    )
    .expect("send");
    assert_eq!(crate::support::read_reply(&mut s, true).status, 400);
}

#[test]
fn the_log_holds_one_line_per_decision() {
    let origin = Origin::start("logged");
    let proxy = Proxy::start(&["allowed.test"], &[("allowed.test", origin.addr)], &[]);
    let (r1, _) = proxy.connect("allowed.test:443");
    let r2 = proxy.request("GET http://blocked.test/x HTTP/1.1", "blocked.test");
    let (r3, _) = proxy.connect("10.0.0.5:443");
    assert_eq!((r1.status, r2.status, r3.status), (200, 403, 403));

    let lines = proxy.log_lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let fields = |i: usize| {
        let l = &lines[i];
        (
            l["method"].as_str().unwrap_or_default().to_owned(),
            l["host"].as_str().unwrap_or_default().to_owned(),
            l["port"].as_u64().unwrap_or_default(),
            l["decision"].as_str().unwrap_or_default().to_owned(),
            l["reason"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let f = |m: &str, h: &str, p: u64, d: &str, r: &str| {
        (m.to_owned(), h.to_owned(), p, d.to_owned(), r.to_owned())
    };
    assert_eq!(
        fields(0),
        f(
            "CONNECT",
            "allowed.test",
            443,
            "allow",
            "in network.allow (test host map)"
        )
    );
    assert_eq!(
        fields(1),
        f("GET", "blocked.test", 80, "deny", "not in network.allow")
    );
    assert_eq!(
        fields(2),
        f(
            "CONNECT",
            "10.0.0.5",
            443,
            "deny",
            "IP literal not in network.allow"
        )
    );
    assert_eq!(lines[0]["addr"], origin.addr.to_string());
    for l in &lines {
        let ts = l["ts"].as_str().unwrap_or_default();
        // RFC 3339 in UTC: 2026-05-01T12:00:00.123Z
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && &ts[10..11] == "T", "{ts}");
    }
    let mode = std::fs::metadata(&proxy.log)
        .expect("log")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn concurrent_writers_never_tear_a_line() {
    let origin = Origin::start("many");
    let proxy = Proxy::start(&["allowed.test"], &[("allowed.test", origin.addr)], &[]);
    // A second writer on the same file, as a second clp would be.
    let other = clp_net::log::DecisionLog::open(&proxy.log).expect("second writer");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10 {
                    let _ = proxy.connect("denied.test:443");
                }
            });
        }
        s.spawn(|| {
            for i in 0..40 {
                other
                    .append(&clp_net::log::Record {
                        ts: clp_net::log::now_rfc3339(),
                        method: "GET".into(),
                        host: format!("other{i}.test"),
                        port: 80,
                        decision: clp_net::log::Decision::Deny,
                        reason: "x".repeat(300),
                        addr: None,
                        error: None,
                    })
                    .expect("append");
            }
        });
    });
    assert_eq!(proxy.log_lines().len(), 80);
}

#[test]
fn a_refusal_returns_promptly() {
    let proxy = Proxy::start(&["allowed.test"], &[], &[]);
    // The client's read timeout (5 s) turns a hang into a failure.
    let (reply, _) = proxy.connect("blocked.test:443");
    assert_eq!(reply.status, 403);
    let (reply, _) = proxy.connect("192.168.1.1:443");
    assert_eq!(reply.status, 403);
}

#[test]
fn shutdown_closes_tunnels_and_stops_accepting() {
    let origin = Origin::start("shut");
    let mut proxy = Proxy::start(&["allowed.test"], &[("allowed.test", origin.addr)], &[]);
    let (reply, mut tunnel) = proxy.connect("allowed.test:443");
    assert_eq!(reply.status, 200);
    proxy.shutdown();
    // The tunnel is closed: reading gives EOF (or a reset), not the 5 s timeout.
    let mut buf = [0u8; 1];
    let read = std::io::Read::read(&mut tunnel, &mut buf);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    if let Err(e) = &read {
        assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "still open");
    }
    assert!(!crate::support::listening(proxy.addr));
}
