//! The network policy of a level B session (`network.mode`), with real bubblewrap, the
//! namespace helper, the relays and the proxy, as root and as a normal user.
//!
//! Local servers on loopback stand in for the internet: the proxy's test resolver map
//! (`CLP_TEST_PROXY_HOSTS`) makes `allowed.test` and `blocked.test` resolve to them.
//! Every check has a hang guard (`timeout 5`): a refusal must come fast, never a wait.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clp_test_backend::{Backend, Config, ToolScript};

use crate::common::{self, text};
use crate::sandbox::{self, ready, As, Box, Tmux};

/// The host side of the checks: the stand-ins for the internet, another loopback
/// service, a UDP listener and an abstract unix socket.
struct World {
    allowed: Backend,
    blocked: Backend,
    other: Backend,
    udp: UdpSocket,
    abstract_name: String,
    _abstract: UnixListener,
}

impl World {
    fn new() -> World {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let abstract_name = format!("clp-it-net-{}-{}", std::process::id(), rand_suffix());
        let addr = UnixAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        World {
            allowed: Backend::start(Config::default()).unwrap(),
            blocked: Backend::start(Config::default()).unwrap(),
            other: Backend::start(Config::default()).unwrap(),
            udp,
            abstract_name,
            _abstract: UnixListener::bind_addr(&addr).unwrap(),
        }
    }

    /// The proxy's test resolver map.
    fn hosts(&self) -> String {
        format!(
            "allowed.test={},blocked.test={}",
            self.allowed.addr(),
            self.blocked.addr()
        )
    }

    fn udp_port(&self) -> u16 {
        self.udp.local_addr().unwrap().port()
    }

    /// Whether anything arrived on the UDP listener.
    fn udp_got_something(&self) -> bool {
        let mut buf = [0u8; 64];
        self.udp.recv(&mut buf).is_ok()
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

/// A box whose profile `box` runs with `network.mode = mode` and `allow`, the proxy's
/// test map pointing at `world`.
fn net_box(mode: As, world: &World, net: &str, allow: &[&str]) -> Option<Box> {
    let user = ready(mode)?;
    let mut b = Box::new(mode, user, Backend::start(Config::default()).unwrap());
    let allow: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
    b.profile(
        "box",
        &format!(
            "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\n\
             trust = true\n[network]\nmode = \"{net}\"\nallow = [{}]\n",
            b.url,
            allow.join(", ")
        ),
    );
    b.extra_env
        .push(("CLP_TEST_PROXY_HOSTS".into(), world.hosts()));
    Some(b)
}

/// Runs every check inside the session; each line says `PASS name` when what was
/// expected happened (`ok`: it worked, `no`: it failed), `FAIL name` otherwise.
fn checks(b: &Box, world: &World, filtered: bool) -> String {
    let backend = b.backend.port();
    let other = world.other.port();
    let udp = world.udp_port();
    let abs = &world.abstract_name;
    // What only a filtered session refuses.
    let local = if filtered { "no" } else { "ok" };
    let script = format!(
        r#"
ok() {{ n=$1; shift; if timeout 5 "$@" >/dev/null 2>&1; then echo "PASS $n"; else echo "FAIL $n"; fi; }}
no() {{ n=$1; shift; if timeout 5 "$@" >/dev/null 2>&1; then echo "FAIL $n"; else echo "PASS $n"; fi; }}
ok backend-curl curl -sf --noproxy '*' http://127.0.0.1:{backend}/health
ok backend-devtcp bash -c 'exec 3<>/dev/tcp/127.0.0.1/{backend}'
ok backend-python python3 -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:{backend}/health", timeout=4)'
{local} other-loopback-devtcp bash -c 'exec 3<>/dev/tcp/127.0.0.1/{other}'
{local} other-loopback-curl curl -sf --noproxy '*' http://127.0.0.1:{other}/health
{local} abstract-socket socat -u OPEN:/dev/null ABSTRACT-CONNECT:{abs}
if [ -n "$HTTP_PROXY" ]; then
ok allowed-curl curl -sf http://allowed.test/health
ok allowed-python python3 -c 'import urllib.request as u; u.urlopen("http://allowed.test/health", timeout=4)'
no blocked-curl curl -sf http://blocked.test/health
no ip-literal-through-proxy curl -sf --proxy "$HTTP_PROXY" http://127.0.0.1:{other}/health
no localhost-name-through-proxy curl -sf --proxy "$HTTP_PROXY" http://localhost/health
no direct-ip bash -c 'exec 3<>/dev/tcp/192.0.2.1/80'
fi
bash -c 'echo hi > /dev/udp/127.0.0.1/{udp}' 2>/dev/null
echo done
"#
    );
    let out = b.sh(&script);
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("done"), "{:?}: {stdout}\n{stderr}", b.mode);
    stdout
}

fn failures(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("FAIL")).collect()
}

fn allowlist(mode: As) {
    let world = World::new();
    let Some(b) = net_box(mode, &world, "allowlist", &["allowed.test", "localhost"]) else {
        return;
    };
    let stdout = checks(&b, &world, true);
    assert!(stdout.contains("PASS allowed-curl"), "{mode:?}:\n{stdout}");
    assert!(failures(&stdout).is_empty(), "{mode:?}:\n{stdout}");
    assert!(
        !world.udp_got_something(),
        "{mode:?}: UDP reached the host's loopback"
    );
    // Every refusal explained in the log, out of the session's reach.
    let out = b.clp(&["log", "box"]).output().unwrap();
    let (log, stderr) = text(&out);
    assert!(out.status.success(), "{log}{stderr}");
    for needle in ["blocked.test", "localhost", "127.0.0.1"] {
        assert!(
            log.contains(needle),
            "{mode:?}: the log lacks {needle}:\n{log}"
        );
    }
    assert!(log.contains("not in network.allow"), "{log}");
    assert!(
        !log.contains("allowed.test"),
        "allowed requests are not refusals:\n{log}"
    );
    // The control: without the namespace the same local checks reach the host.
    let open = net_box(mode, &world, "open", &[]).unwrap();
    let stdout = checks(&open, &world, false);
    assert!(failures(&stdout).is_empty(), "{mode:?}: control:\n{stdout}");
    assert!(
        world.udp_got_something(),
        "{mode:?}: control UDP did not arrive"
    );
}

#[test]
fn allowlist_reaches_the_backend_and_allowed_hosts_only_as_root() {
    allowlist(As::Root);
}

#[test]
fn allowlist_reaches_the_backend_and_allowed_hosts_only_as_user() {
    allowlist(As::User);
}

#[test]
fn offline_reaches_only_the_backend() {
    let world = World::new();
    let Some(b) = net_box(As::User, &world, "offline", &["allowed.test"]) else {
        return;
    };
    let out = b.sh(&format!(
        "curl -sf --noproxy '*' http://127.0.0.1:{}/health >/dev/null && echo backend; \
         timeout 5 curl -sf http://allowed.test/health >/dev/null || echo refused",
        b.backend.port()
    ));
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("backend"), "{stdout}{stderr}");
    assert!(stdout.contains("refused"), "{stdout}{stderr}");
}

/// An IDE's WebSocket port (its lock file in the main install's `~/.claude/ide`) is
/// relayed, and so is one of an IDE started after the session.
fn ide_ports(mode: As) {
    let world = World::new();
    let Some(b) = net_box(mode, &world, "offline", &[]) else {
        return;
    };
    let early = TcpListener::bind("127.0.0.1:0").unwrap();
    let early_port = early.local_addr().unwrap().port();
    b.write(
        &format!(".claude/ide/{early_port}.lock"),
        "{\"pid\":1,\"workspaceFolders\":[],\"ideName\":\"stand-in\",\"transport\":\"ws\"}",
    );
    let late = TcpListener::bind("127.0.0.1:0").unwrap();
    let late_port = late.local_addr().unwrap().port();
    let script = format!(
        "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{early_port}; echo early >&3' && echo early-ok; \
         for i in $(seq 100); do if bash -c 'exec 3<>/dev/tcp/127.0.0.1/{late_port}; echo late >&3' 2>/dev/null; \
         then echo late-ok; break; fi; sleep 0.1; done"
    );
    let mut child = common::Guarded::spawn(
        b.clp(&["run", "box", "--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    std::thread::sleep(Duration::from_millis(1500));
    b.write(
        &format!(".claude/ide/{late_port}.lock"),
        "{\"pid\":1,\"workspaceFolders\":[],\"ideName\":\"late\",\"transport\":\"ws\"}",
    );
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{mode:?}: {stdout}");
    assert!(stdout.contains("early-ok"), "{mode:?}: {stdout}");
    assert!(stdout.contains("late-ok"), "{mode:?}: {stdout}");
    for (l, word) in [(&early, "early"), (&late, "late")] {
        l.set_nonblocking(false).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got.trim(), word);
    }
}

#[test]
fn ide_ports_are_relayed_even_when_the_ide_starts_later_as_root() {
    ide_ports(As::Root);
}

#[test]
fn ide_ports_are_relayed_even_when_the_ide_starts_later_as_user() {
    ide_ports(As::User);
}

/// The real Claude Code in allowlist mode: a `-p` round trip with the test server, and a
/// Bash command (approved, inside Claude Code's own sandbox) that reaches `allowed.test`
/// and not `blocked.test`.
fn real_client(mode: As) {
    let Some(claude) = common::claude() else {
        return;
    };
    require_tmux();
    let world = World::new();
    let Some(mut b) = net_box(mode, &world, "allowlist", &["allowed.test"]) else {
        return;
    };
    let claude = sandbox::shared_copy(&claude, "claude");
    b.path_var = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        claude.parent().unwrap().display()
    );
    let before = common::tree(&b.home);
    let out = b
        .clp(&["use", "box", "--", "-p", "say pong"])
        .output()
        .unwrap();
    sandbox::assert_pong(&b, &out, &before);

    let script = Backend::start(Config {
        script: Some(ToolScript::Bash {
            command: "curl -s -o /dev/null -w 'allowed=%{http_code} ' http://allowed.test/health; \
                      curl -s -o /dev/null -w 'blocked=%{http_code} ' http://blocked.test/health; \
                      echo runtime=$SANDBOX_RUNTIME"
                .into(),
        }),
        ..Config::default()
    })
    .unwrap();
    b.profile(
        "box",
        &format!(
            "extends = \"local-glm\"\n[backend]\nurl = \"{}\"\n[workspace]\npath = \"~/project\"\n\
             trust = true\n[network]\nmode = \"allowlist\"\nallow = [\"allowed.test\"]\n",
            script.url()
        ),
    );
    let t = Tmux::start(&b, &[]);
    t.run_bash_tool();
    t.wait_for("TOOL_RESULT:");
    let done = t.wait_for("runtime=1");
    assert!(done.contains("allowed=200"), "{mode:?}:\n{done}");
    assert!(done.contains("blocked=403"), "{mode:?}:\n{done}");
    t.quit();
}

fn require_tmux() {
    common::require("tmux (apt-get install tmux)", common::which("tmux"));
}

#[test]
fn real_claude_code_in_allowlist_mode_as_root() {
    real_client(As::Root);
}

#[test]
fn real_claude_code_in_allowlist_mode_as_user() {
    real_client(As::User);
}

/// A filtered session feels like an exec: the child's exit code, and SIGTERM to clp ends
/// the session, the helper, the relays and the proxy, leaving no process behind.
fn exit_and_signals(mode: As) {
    let world = World::new();
    let Some(b) = net_box(mode, &world, "offline", &[]) else {
        return;
    };
    let out = b.sh("exit 7");
    assert_eq!(out.status.code(), Some(7), "{:?}", text(&out));

    let n = rand_suffix();
    let marker = format!("clp-it-sleep-{n}");
    // Quoted apart, so that only the sleep's own name holds the marker, not clp's argv.
    let mut child = common::Guarded::spawn(
        b.clp(&[
            "run",
            "box",
            "--",
            "bash",
            "-c",
            &format!("exec -a clp-it-sl\"\"eep-{n} sleep 60"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped()),
    );
    let mut up = false;
    for _ in 0..100 {
        if !processes_with(&marker).is_empty() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(up, "{mode:?}: the session never started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(0), "{mode:?}");
    for _ in 0..50 {
        if processes_with(&marker).is_empty() && helpers_of(&b.home).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{mode:?}: left behind: {:?} {:?}",
        processes_with(&marker),
        helpers_of(&b.home)
    );
}

/// Processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// clp's namespace helpers and bubblewraps started for the box at `home`.
fn helpers_of(home: &Path) -> Vec<u32> {
    let home = home.display().to_string();
    processes_with("__netns-helper")
        .into_iter()
        .chain(processes_with("bwrap"))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&home))
        })
        .collect()
}

#[test]
fn exit_codes_and_sigterm_pass_through_a_filtered_session_as_root() {
    exit_and_signals(As::Root);
}

#[test]
fn exit_codes_and_sigterm_pass_through_a_filtered_session_as_user() {
    exit_and_signals(As::User);
}

/// Level C with Podman in allowlist mode: the container joins clp's namespace. The image
/// has bash but no curl: the checks speak HTTP over `/dev/tcp`.
fn container_allowlist(mode: As) {
    let Some(user) = crate::container::ready(mode, "localhost/clp-claude:2.1.330") else {
        return;
    };
    let world = World::new();
    let backend = Backend::start(Config::default()).unwrap();
    let mut b = crate::container::container_box_at(
        mode,
        user,
        backend,
        &format!("http://127.0.0.1:{}", 0),
        false,
        "[network]\nmode = \"allowlist\"\nallow = [\"allowed.test\"]\n",
    );
    // The box's own backend, by its real port.
    let url = b.backend.url();
    b.profile(
        "box",
        &format!(
            "extends = \"local-container\"\n[backend]\nurl = \"{url}\"\n[workspace]\n\
             path = \"~/project\"\n[network]\nmode = \"allowlist\"\nallow = [\"allowed.test\"]\n"
        ),
    );
    b.extra_env
        .push(("CLP_TEST_PROXY_HOSTS".into(), world.hosts()));
    if mode == As::User {
        crate::container::storage_conf(&b);
    }
    let backend = b.backend.port();
    let other = world.other.port();
    let udp = world.udp_port();
    let script = format!(
        r#"
get() {{ exec 3<>/dev/tcp/127.0.0.1/$1 || return 1; printf "GET $2 HTTP/1.0\r\nHost: x\r\n\r\n" >&3; head -1 <&3; }}
t() {{ n=$1; want=$2; shift 2; got=$(timeout 5 bash -c "$*" 2>/dev/null | tr -d '\r'); case "$got" in *"$want"*) echo "PASS $n";; *) echo "FAIL $n: $got";; esac; }}
declare -f get > /tmp/get.sh
t backend 200 ". /tmp/get.sh; get {backend} /health"
t allowed 200 ". /tmp/get.sh; get $PORT http://allowed.test/health"
t blocked 403 ". /tmp/get.sh; get $PORT http://blocked.test/health"
t other-loopback refused "exec 3<>/dev/tcp/127.0.0.1/{other} && echo connected || echo refused"
t direct-ip failed "exec 3<>/dev/tcp/192.0.2.1/80 && echo connected || echo failed"
bash -c 'echo hi > /dev/udp/127.0.0.1/{udp}' 2>/dev/null
echo done
"#
    )
    .replace("$PORT", &clp_core::network::PROXY_PORT.to_string());
    let out = b
        .clp(&["run", "box", "--", "bash", "-c", &script])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("done"), "{mode:?}: {stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS")).count(),
        5,
        "{mode:?}:\n{stdout}\n{stderr}"
    );
    assert!(
        !world.udp_got_something(),
        "{mode:?}: UDP reached the host's loopback"
    );
    // The control: the host's network (`open`) reaches the other loopback service.
    b.profile(
        "box",
        &format!(
            "extends = \"local-container\"\n[backend]\nurl = \"{url}\"\n[workspace]\n\
             path = \"~/project\"\n[network]\nmode = \"open\"\n"
        ),
    );
    let out = b
        .clp(&["run", "box", "--", "bash", "-c", &script])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("FAIL other-loopback: connected"),
        "{mode:?}: control:\n{stdout}\n{stderr}"
    );
    assert!(
        world.udp_got_something(),
        "{mode:?}: control UDP did not arrive"
    );
}

#[test]
fn container_allowlist_with_podman_as_root() {
    container_allowlist(As::Root);
}

#[test]
fn container_allowlist_with_podman_as_user() {
    container_allowlist(As::User);
}
