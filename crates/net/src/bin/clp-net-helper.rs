//! A stand-in for clp in clp-net's tests: `clp-net-helper helper ...` plays clp's
//! re-executed helper, `clp-net-helper parent [OPTIONS] -- CMD...` plays clp itself
//! (spawns the helper, serves relays and the proxies, waits, exits with the code).
//!
//! Parent options:
//! `--relay PORT=HOST:PORT` relay an inside port to a host address;
//! `--late PORT=HOST:PORT` the same, asked of the helper after the command started;
//! `--proxy PORT` serve the HTTP proxy on an inside port; `--socks PORT` serve the
//! SOCKS5 server on one; `--allow ENTRY`, `--pin HOST:PORT=ADDR`, `--test-hosts MAP`,
//! `--log PATH` configure both;
//! `--pid-file PATH` write the helper's pid there once it is ready;
//! `--timing` print the setup time (spawn to listeners received) to stderr.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use clp_net::netns::{helper_main, NetnsSession};
use clp_net::policy::Allowlist;
use clp_net::proxy::{serve_proxy, Pinned, ProxyConfig};
use clp_net::relay::serve_relay;
use clp_net::resolve::{parse_test_hosts, Resolver};
use clp_net::socks::serve_socks;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next().as_deref().and_then(|a| a.to_str()) {
        Some("helper") => code(helper_main(args)),
        Some("parent") => match parent(args.collect()) {
            Ok(c) => code(c),
            Err(e) => {
                eprintln!("clp-net-helper: {e}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("usage: clp-net-helper helper ARGS | parent [OPTIONS] -- CMD...");
            ExitCode::from(2)
        }
    }
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(c.clamp(0, 255) as u8)
}

#[derive(Default)]
struct Opts {
    relays: Vec<(u16, SocketAddr)>,
    late: Vec<(u16, SocketAddr)>,
    proxy: Option<u16>,
    socks: Option<u16>,
    allow: Vec<String>,
    pins: Vec<(String, u16, SocketAddr)>,
    test_hosts: Option<String>,
    log: Option<String>,
    pid_file: Option<String>,
    timing: bool,
    argv: Vec<OsString>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn port_to_addr(v: &str) -> Result<(u16, SocketAddr)> {
    let (port, addr) = v.split_once('=').ok_or("expected PORT=HOST:PORT")?;
    Ok((port.parse()?, addr.parse()?))
}

fn parse(args: Vec<OsString>) -> Result<Opts> {
    let mut o = Opts::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let a = a.into_string().map_err(|_| "non-UTF-8 option")?;
        if a == "--" {
            o.argv = it.collect();
            return Ok(o);
        }
        if a == "--timing" {
            o.timing = true;
            continue;
        }
        let v = it
            .next()
            .and_then(|v| v.into_string().ok())
            .ok_or_else(|| format!("`{a}` needs a value"))?;
        match a.as_str() {
            "--relay" => o.relays.push(port_to_addr(&v)?),
            "--late" => o.late.push(port_to_addr(&v)?),
            "--proxy" => o.proxy = Some(v.parse()?),
            "--socks" => o.socks = Some(v.parse()?),
            "--allow" => o.allow.push(v),
            "--pin" => {
                let (hp, addr) = v.split_once('=').ok_or("expected HOST:PORT=ADDR")?;
                let (h, p) = hp.rsplit_once(':').ok_or("expected HOST:PORT=ADDR")?;
                o.pins.push((h.to_owned(), p.parse()?, addr.parse()?));
            }
            "--test-hosts" => o.test_hosts = Some(v),
            "--log" => o.log = Some(v),
            "--pid-file" => o.pid_file = Some(v),
            _ => return Err(format!("unknown option `{a}`").into()),
        }
    }
    Err("missing `--` before the command".into())
}

fn parent(args: Vec<OsString>) -> Result<i32> {
    let o = parse(args)?;
    let mut config =
        ProxyConfig::new(Allowlist::parse(&o.allow).map_err(clp_net::Error::AllowEntry)?);
    for (h, p, a) in &o.pins {
        config.pinned.push(Pinned::new(h, *p, *a)?);
    }
    if let Some(map) = &o.test_hosts {
        config.resolver = Resolver::with_map(parse_test_hosts(map)?)?;
    }
    if let Some(path) = &o.log {
        config.log = Some(Arc::new(clp_net::log::DecisionLog::open(path)?));
    }

    let mut ports: Vec<u16> = o.relays.iter().map(|r| r.0).collect();
    ports.extend(o.proxy);
    ports.extend(o.socks);
    let mut helper = Command::new(std::env::current_exe()?);
    helper.arg("helper");
    let start = Instant::now();
    let mut session = NetnsSession::spawn(helper, &ports, &o.argv)?;
    if o.timing {
        eprintln!("setup: {} us", start.elapsed().as_micros());
    }
    let mut listeners = std::mem::take(&mut session.listeners).into_iter();
    let mut relays = Vec::new();
    for (_, target) in &o.relays {
        let (_, l) = listeners.next().ok_or("missing listener")?;
        relays.push((l, *target));
    }
    let proxy = o.proxy.and_then(|_| listeners.next()).map(|(_, l)| l);
    let socks = o.socks.and_then(|_| listeners.next()).map(|(_, l)| l);
    let late = o.late.clone();
    let control = session.control.clone();

    // The runtime runs on its own thread; this one (which spawned the helper, and so
    // anchors its parent-death signal) waits for the helper.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::result::Result<(), String>>();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        runtime.block_on(async move {
            let mut handles = Vec::new();
            let started = || -> std::result::Result<(), clp_net::Error> {
                for (l, t) in relays {
                    handles.push(serve_relay(l, t)?);
                }
                if let Some(l) = socks {
                    handles.push(serve_socks(l, config.clone())?);
                }
                if let Some(l) = proxy {
                    handles.push(serve_proxy(l, config)?);
                }
                Ok(())
            };
            let result = started().map_err(|e| e.to_string());
            let ok = result.is_ok();
            let _ = ready_tx.send(result);
            if !ok {
                return;
            }
            // Late binds come mid-session, as for an IDE started after Claude Code.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            for (port, target) in late {
                let control = control.clone();
                let bound = tokio::task::spawn_blocking(move || control.bind(port)).await;
                match bound {
                    Ok(Ok(l)) => match serve_relay(l, target) {
                        Ok(h) => handles.push(h),
                        Err(e) => eprintln!("clp-net-helper: late relay: {e}"),
                    },
                    Ok(Err(e)) => eprintln!("clp-net-helper: late bind: {e}"),
                    Err(e) => eprintln!("clp-net-helper: late bind: {e}"),
                }
            }
            std::future::pending::<()>().await;
        });
    });
    ready_rx.recv()??;
    if let Some(path) = &o.pid_file {
        std::fs::write(path, session.helper.id().to_string())?;
    }
    let status = session.helper.wait()?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
