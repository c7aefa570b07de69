//! The namespace helper end to end, with real bubblewrap, as root (through clp's
//! two-layer root sandbox) and as the unprivileged user `clptest`.
//!
//! `clp-net-helper parent` plays clp: it spawns itself as the helper, serves the relays
//! and the proxies (HTTP and SOCKS5), and exits with the sandbox's code. Each test skips with a `SKIPPED:`
//! line when the machine cannot run it, and fails instead under `CLP_REQUIRE_ALL=1`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::Origin;

const HELPER: &str = env!("CARGO_BIN_EXE_clp-net-helper");
const TEST_USER: &str = "clptest";

/// Who runs clp, and so which sandbox shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// clp as root: a root bubblewrap without user namespace, `setpriv` to the user,
    /// then the user's bubblewrap (as `clp_core::sandbox::wrap` renders it).
    Root,
    /// clp as `clptest` (or as the current user when the tests do not run as root):
    /// one bubblewrap with a user namespace.
    User,
}

/// The user the sandbox runs as, and how the parent is started.
struct Runner {
    variant: Variant,
    /// `Some((uid, gid))`: start the parent through `setpriv` as that user.
    switch_to: Option<(u32, u32)>,
    /// The sandbox user's ids.
    uid: u32,
    gid: u32,
}

fn skip_or_fail(why: &str) -> Option<Runner> {
    if std::env::var_os("CLP_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("CLP_REQUIRE_ALL=1 but {why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

fn runner(variant: Variant) -> Option<Runner> {
    for program in ["bwrap", "setpriv", "socat", "curl", "bash"] {
        if !have(program) {
            return skip_or_fail(&format!("`{program}` is not installed"));
        }
    }
    let root = nix::unistd::geteuid().is_root();
    let user = nix::unistd::User::from_name(TEST_USER).ok().flatten();
    match (variant, root) {
        (Variant::Root, false) => skip_or_fail("the root variant needs the tests to run as root"),
        (Variant::Root, true) => match user {
            Some(u) => Some(Runner {
                variant,
                switch_to: None,
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            }),
            None => skip_or_fail(&format!("user `{TEST_USER}` does not exist")),
        },
        (Variant::User, true) => match user {
            Some(u) => Some(Runner {
                variant,
                switch_to: Some((u.uid.as_raw(), u.gid.as_raw())),
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            }),
            None => skip_or_fail(&format!("user `{TEST_USER}` does not exist")),
        },
        (Variant::User, false) => Some(Runner {
            variant,
            switch_to: None,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }),
    }
}

impl Runner {
    /// The sandbox command, as clp renders it for this variant, running `script`.
    fn sandbox(&self, script: &str) -> Vec<String> {
        let mut argv: Vec<String> = Vec::new();
        let mut add = |items: &[&str]| argv.extend(items.iter().map(|s| s.to_string()));
        if self.variant == Variant::Root {
            add(&["bwrap", "--die-with-parent", "--new-session"]);
            add(&[
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-cgroup-try",
            ]);
            add(&[
                "--cap-drop",
                "ALL",
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
            ]);
            add(&[
                "--cap-add",
                "CAP_SETPCAP",
                "--ro-bind",
                "/",
                "/",
                "--bind",
                "/proc",
                "/proc",
            ]);
            add(&[
                "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777",
            ]);
            add(&["--tmpfs", "/dev/shm", "--", "setpriv"]);
            argv.push(format!("--reuid={}", self.uid));
            argv.push(format!("--regid={}", self.gid));
            let mut add = |items: &[&str]| argv.extend(items.iter().map(|s| s.to_string()));
            add(&["--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]);
            add(&["--no-new-privs", "--"]);
        }
        let mut add = |items: &[&str]| argv.extend(items.iter().map(|s| s.to_string()));
        add(&["bwrap", "--die-with-parent", "--unshare-all", "--share-net"]);
        add(&[
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
        ]);
        add(&["--tmpfs", "/tmp", "--", "bash", "-c", script]);
        argv
    }

    /// `clp-net-helper parent ARGS -- SANDBOX`, as the parent's user.
    fn parent(&self, args: &[String], sandbox: &[String]) -> Command {
        let mut cmd = match self.switch_to {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--", HELPER]);
                c
            }
            None => Command::new(HELPER),
        };
        cmd.arg("parent").args(args).arg("--").args(sandbox);
        cmd.current_dir("/");
        cmd
    }

    /// A temp dir the parent's user can write.
    fn scratch(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some((uid, gid)) = self.switch_to {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        dir
    }
}

/// Waits for `child` at most `limit`, killing it past that.
/// A started parent, leader of a process group of its own, killed with the whole group
/// when dropped: a failed assertion must not leave its sandbox (`sleep 600`) running.
struct Group(Option<Child>);

impl Group {
    fn spawn(cmd: &mut Command) -> Group {
        use std::os::unix::process::CommandExt;
        Group(Some(cmd.process_group(0).spawn().expect("start")))
    }

    fn kill_all(&self) {
        if let Some(c) = &self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl std::ops::Deref for Group {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a child")
    }
}

impl std::ops::DerefMut for Group {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a child")
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill_all();
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_output(mut child: Group, limit: Duration) -> Output {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.0.take().expect("a child").wait_with_output();
            return out.expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill_all();
    let out = child
        .0
        .take()
        .expect("a child")
        .wait_with_output()
        .expect("output");
    panic!(
        "timed out after {limit:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A host TCP listener that greets every connection with `text` and counts them.
fn greeter(text: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            let _ = writeln!(s, "{text}");
        }
    });
    (addr, count)
}

/// A host abstract Unix socket that counts connections.
fn abstract_listener(name: &str) -> Arc<AtomicUsize> {
    let addr = UnixAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
    let listener = UnixListener::bind_addr(&addr).expect("bind abstract");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for _ in listener.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    count
}

fn wait_for(count: &AtomicUsize, at_least: usize) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if count.load(Ordering::SeqCst) >= at_least {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

const RELAY_PORT: u16 = 8080;
const PROXY_PORT: u16 = 3128;
const SOCKS_PORT: u16 = 1080;
/// Below the ephemeral range (32768-60999): the inside loop that waits for it could
/// otherwise, once in many runs, be given 45000 as its own source port and connect to
/// itself (TCP simultaneous open), which then holds the port the late bind needs.
const LATE_PORT: u16 = 24000;

fn session_checks(variant: Variant) {
    let Some(runner) = runner(variant) else {
        return;
    };
    let scratch = runner.scratch();
    let log = scratch.path().join("proxy.jsonl");

    let (backend, backend_hits) = greeter("hello-from-host");
    let (other, other_hits) = greeter("other-host-port");
    let (late, late_hits) = greeter("late-hello");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let udp_port = udp.local_addr().expect("udp addr").port();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let abstract_name = format!("clp-net-test-{}-{variant:?}", std::process::id());
    let abstract_hits = abstract_listener(&abstract_name);
    let allowed = Origin::start("allowed");
    let blocked = Origin::start("blocked");

    // Controls: each probe works from the host, so a failure inside is the boundary.
    std::net::TcpStream::connect(other).expect("control: other host port");
    assert!(wait_for(&other_hits, 1));
    let socat = Command::new("socat")
        .args(["-u", "OPEN:/dev/null"])
        .arg(format!("ABSTRACT-CONNECT:{abstract_name}"))
        .status()
        .expect("socat");
    assert!(
        socat.success() && wait_for(&abstract_hits, 1),
        "control: abstract socket"
    );
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.send_to(b"control", ("127.0.0.1", udp_port)))
        .expect("control: udp send");
    let mut buf = [0u8; 64];
    let n = udp.recv(&mut buf).expect("control: udp arrives");
    assert_eq!(&buf[..n], b"control");

    let script = format!(
        r#"
exec 2>&1
echo "fds:$(ls /proc/self/fd | tr '\n' ' ')"
if exec 3<>/dev/tcp/127.0.0.1/{RELAY_PORT}; then read -r -t 3 l <&3; echo "relay:$l"; exec 3<&-; else echo relay:failed; fi
if timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{other_port}' 2>/dev/null; then echo other:reached; else echo "other:unreachable:$?"; fi
echo udp-from-inside > /dev/udp/127.0.0.1/{udp_port} && echo udp:sent
if timeout 2 socat -u OPEN:/dev/null ABSTRACT-CONNECT:{abstract_name} 2>/dev/null; then echo abstract:reached; else echo abstract:unreachable; fi
echo "ifaces:$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "proxy-get:$(curl -sS --max-time 5 -x http://127.0.0.1:{PROXY_PORT} http://allowed.test/inside)"
echo "proxy-connect:$(curl -sS --max-time 5 -p -x http://127.0.0.1:{PROXY_PORT} http://allowed.test:443/tunnel)"
echo "proxy-blocked:$(curl -sS --max-time 5 -x http://127.0.0.1:{PROXY_PORT} http://blocked.test/)"
echo "socks-get:$(curl -sS --max-time 5 --socks5-hostname 127.0.0.1:{SOCKS_PORT} http://allowed.test/socks)"
curl -sS --max-time 5 --socks5-hostname 127.0.0.1:{SOCKS_PORT} http://blocked.test/ 2>/dev/null; echo "socks-blocked:$?"
# Claude Code's own Bash sandbox: a nested bubblewrap without network, whose
# ALL_PROXY=socks5h://localhost:PORT is bridged over a Unix socket to the SOCKS port.
socat UNIX-LISTEN:/tmp/socks.sock,fork TCP:127.0.0.1:{SOCKS_PORT} & bridge=$!
for i in $(seq 1 100); do [ -S /tmp/socks.sock ] && break; sleep 0.05; done
echo "socks-nested:$(bwrap --unshare-all --ro-bind / / --bind /tmp /tmp --dev /dev --proc /proc bash -c '
  socat TCP-LISTEN:{SOCKS_PORT},bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:/tmp/socks.sock & inner=$!
  # Wait for the listener (state 0A) without connecting to it.
  for i in $(seq 1 100); do grep -q ":$(printf %04X {SOCKS_PORT}) 00000000:0000 0A" /proc/net/tcp && break; sleep 0.05; done
  ALL_PROXY=socks5h://localhost:{SOCKS_PORT} curl -sS --max-time 5 http://allowed.test/nested
  # bubblewrap waits for every process inside, not only this one.
  kill $inner
' 2>&1)"
kill $bridge
echo "routes:$(tail -n +2 /proc/net/route | wc -l)"
if bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc true; then echo nested:ok; else echo nested:failed; fi
echo "whoami:$(id -u):$(id -g)"
for i in $(seq 1 60); do
  if exec 4<>/dev/tcp/127.0.0.1/{LATE_PORT}; then read -r -t 3 l <&4; echo "late:$l"; break; fi 2>/dev/null
  sleep 0.05
done
exit 42
"#,
        other_port = other.port(),
    );
    let args: Vec<String> = vec![
        "--relay".into(),
        format!("{RELAY_PORT}={backend}"),
        "--proxy".into(),
        PROXY_PORT.to_string(),
        "--socks".into(),
        SOCKS_PORT.to_string(),
        "--late".into(),
        format!("{LATE_PORT}={late}"),
        "--allow".into(),
        "allowed.test".into(),
        "--test-hosts".into(),
        format!(
            "allowed.test={},blocked.test={}",
            allowed.addr, blocked.addr
        ),
        "--log".into(),
        log.display().to_string(),
    ];
    let child = Group::spawn(
        runner
            .parent(&args, &runner.sandbox(&script))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let out = wait_output(child, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = format!(
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let has = |line: &str| stdout.lines().any(|l| l == line);

    assert_eq!(
        out.status.code(),
        Some(42),
        "exit code passes through\n{report}"
    );
    // 0-2, and 3 for the directory `ls` reads: nothing of clp or the helper leaks in.
    assert!(has("fds:0 1 2 3 "), "only stdio is inherited\n{report}");
    assert!(
        has("relay:hello-from-host"),
        "the relay reaches the host's backend\n{report}"
    );
    // 1: connection refused (no timeout: 124).
    assert!(
        has("other:unreachable:1"),
        "another host port is refused, fast\n{report}"
    );
    assert_eq!(other_hits.load(Ordering::SeqCst), 1, "{report}");
    assert!(has("udp:sent"), "{report}");
    assert!(
        udp.recv(&mut buf).is_err(),
        "UDP from inside must not reach the host's loopback\n{report}"
    );
    assert!(
        has("abstract:unreachable"),
        "host abstract sockets are hidden\n{report}"
    );
    assert_eq!(abstract_hits.load(Ordering::SeqCst), 1, "{report}");
    assert!(has("ifaces:lo "), "only loopback exists inside\n{report}");
    assert!(
        has("proxy-get:allowed GET /inside HTTP/1.1 host=allowed.test"),
        "the proxy forwards to an allowed host\n{report}"
    );
    assert!(
        has("proxy-connect:allowed GET /tunnel HTTP/1.1 host=allowed.test:443"),
        "the proxy tunnels to an allowed host\n{report}"
    );
    assert!(
        has("proxy-blocked:clp: blocked.test:80 refused: not in network.allow"),
        "{report}"
    );
    assert!(
        has("socks-get:allowed GET /socks HTTP/1.1 host=allowed.test"),
        "the SOCKS server reaches an allowed host\n{report}"
    );
    // 97: curl's "the proxy refused" (reply 0x02).
    assert!(has("socks-blocked:97"), "{report}");
    assert!(
        has("socks-nested:allowed GET /nested HTTP/1.1 host=allowed.test"),
        "a nested sandbox reaches it through a bridged ALL_PROXY=socks5h://\n{report}"
    );
    assert!(has("routes:0"), "no route out of the namespace\n{report}");
    assert_eq!(blocked.connection_count(), 0, "{report}");
    assert!(
        has("nested:ok"),
        "a nested bubblewrap works inside\n{report}"
    );
    assert!(
        has(&format!("whoami:{}:{}", runner.uid, runner.gid)),
        "the sandbox runs as the user\n{report}"
    );
    assert!(has("late:late-hello"), "a late bind works\n{report}");
    assert_eq!(backend_hits.load(Ordering::SeqCst), 1, "{report}");
    assert_eq!(late_hits.load(Ordering::SeqCst), 1, "{report}");

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("the proxy log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let decisions: Vec<String> = lines
        .iter()
        .map(|l| {
            let f = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            format!("{} {} {}", f("method"), f("host"), f("decision"))
        })
        .collect();
    assert_eq!(
        decisions,
        [
            "GET allowed.test allow",
            "CONNECT allowed.test allow",
            "GET blocked.test deny",
            "SOCKS5 allowed.test allow",
            "SOCKS5 blocked.test deny",
            "SOCKS5 allowed.test allow",
        ],
        "{report}"
    );
}

#[test]
fn session_as_root_through_the_two_layer_sandbox() {
    session_checks(Variant::Root);
}

#[test]
fn session_as_user() {
    session_checks(Variant::User);
}

/// The parent pid of `pid`, and whether it is a zombie, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state == "Z" || state == "X"))
}

/// `pid` and every live descendant of it.
fn tree(pid: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, stat(p)?.0)))
        .collect();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out
}

fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, zombie)| !zombie)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn sigkill_leaves_nothing(variant: Variant) {
    let Some(runner) = runner(variant) else {
        return;
    };
    let scratch = runner.scratch();
    let pid_file: PathBuf = scratch.path().join("helper.pid");
    let (backend, _) = greeter("unused");
    let args = vec![
        "--relay".into(),
        format!("{RELAY_PORT}={backend}"),
        "--pid-file".into(),
        pid_file.display().to_string(),
    ];
    let mut parent = Group::spawn(
        runner
            .parent(&args, &runner.sandbox("exec sleep 600"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );

    // Wait until the sandbox's `sleep` runs somewhere below the helper.
    let start = Instant::now();
    let (helper, procs) = loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the sandbox did not start"
        );
        if let Some(helper) = read_pid(&pid_file) {
            let procs = tree(helper);
            let sleeping = procs.iter().any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            });
            if sleeping {
                break (helper, procs);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        procs.len() >= 3,
        "helper, bubblewrap and sleep at least: {procs:?}"
    );

    parent.kill().expect("SIGKILL the parent");
    let _ = parent.wait();
    let start = Instant::now();
    while procs.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<String> = procs
        .iter()
        .filter(|p| alive(**p))
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            format!("{p} {}", comm.trim())
        })
        .collect();
    assert!(
        left.is_empty(),
        "still running after the parent's SIGKILL (helper {helper}): {left:?}"
    );
    let mut stderr = String::new();
    if let Some(mut e) = parent.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let _ = stderr;
}

#[test]
fn sigkill_of_the_parent_leaves_nothing_as_root() {
    sigkill_leaves_nothing(Variant::Root);
}

#[test]
fn sigkill_of_the_parent_leaves_nothing_as_user() {
    sigkill_leaves_nothing(Variant::User);
}

/// Runs the parent inside a bubblewrap that takes away what the helper needs, and
/// checks that it refuses with `hint` and never runs the command.
fn refuses_without(runner: &Runner, jail: &[&str], hint: &str) {
    let mut argv: Vec<String> = jail.iter().map(|s| s.to_string()).collect();
    argv.extend(
        [
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--",
        ]
        .map(String::from),
    );
    argv.push(HELPER.into());
    let (backend, hits) = greeter("unused");
    argv.extend([
        "parent".into(),
        "--relay".into(),
        format!("{RELAY_PORT}={backend}"),
    ]);
    argv.extend(["--", "sh", "-c", "echo THE-COMMAND-RAN"].map(String::from));
    let mut cmd = match runner.switch_to {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .args(["--clear-groups", "--"]);
            c.args(&argv);
            c
        }
        None => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    let child = Group::spawn(
        cmd.current_dir("/")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let out = wait_output(child, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains(hint), "stderr:\n{stderr}");
    assert!(
        !stdout.contains("THE-COMMAND-RAN"),
        "the command ran: {stdout}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn fails_closed_without_user_namespaces() {
    let Some(runner) = runner(Variant::User) else {
        return;
    };
    // bubblewrap's --disable-userns leaves no user namespace to create inside.
    refuses_without(
        &runner,
        &["bwrap", "--unshare-user", "--disable-userns"],
        "unprivileged user namespaces look unavailable",
    );
}

#[test]
fn fails_closed_as_root_without_cap_sys_admin() {
    let Some(runner) = runner(Variant::Root) else {
        return;
    };
    refuses_without(
        &runner,
        &["bwrap", "--cap-drop", "ALL"],
        "unshare(CLONE_NEWNET) as root failed",
    );
}

#[test]
fn helper_ignores_sigint_forwards_sigterm_and_reports_128_plus_n() {
    let Some(runner) = runner(Variant::User) else {
        return;
    };
    let scratch = runner.scratch();
    let pid_file = scratch.path().join("helper.pid");
    let (backend, _) = greeter("unused");
    let args = vec![
        "--relay".into(),
        format!("{RELAY_PORT}={backend}"),
        "--pid-file".into(),
        pid_file.display().to_string(),
    ];
    let parent = Group::spawn(
        runner
            .parent(&args, &["sleep".into(), "600".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let start = Instant::now();
    let helper = loop {
        assert!(start.elapsed() < Duration::from_secs(10), "no helper pid");
        if let Some(pid) = read_pid(&pid_file) {
            break nix::unistd::Pid::from_raw(pid as i32);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    use nix::sys::signal::{kill, Signal};
    for signal in [Signal::SIGINT, Signal::SIGQUIT] {
        kill(helper, signal).expect("signal the helper");
        std::thread::sleep(Duration::from_millis(200));
        assert!(alive(helper.as_raw() as u32), "{signal} ended the helper");
    }
    kill(helper, Signal::SIGTERM).expect("SIGTERM the helper");
    let out = wait_output(parent, Duration::from_secs(10));
    assert_eq!(
        out.status.code(),
        Some(128 + 15),
        "the child's SIGTERM death as 143; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn late_binds_answer_with_the_listener_or_the_reason() {
    use clp_net::netns::NetnsSession;
    let mut helper = Command::new(HELPER);
    // No bubblewrap with --die-with-parent here: `sleep` outlives the helper, so it
    // must not hold the test's output open, and is killed below.
    helper
        .arg("helper")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let argv = ["sleep".into(), "600".into()];
    let mut session = NetnsSession::spawn(helper, &[RELAY_PORT, 0], &argv).expect("spawn");
    let ports: Vec<u16> = session.listeners.iter().map(|(p, _)| *p).collect();
    assert_eq!(ports, [RELAY_PORT, 0]);
    let chosen = session.listeners[1].1.local_addr().expect("addr");
    assert!(chosen.ip().is_loopback() && chosen.port() != 0, "{chosen}");
    // The listener lives in the helper's namespace: the host's loopback lacks it.
    let from_host = std::net::TcpStream::connect(chosen);
    assert!(
        from_host.is_err(),
        "{chosen} reachable from the host: {from_host:?}"
    );

    let taken = session
        .control
        .bind(RELAY_PORT)
        .expect_err("the port is taken");
    assert!(
        taken
            .to_string()
            .contains(&format!("127.0.0.1:{RELAY_PORT} inside the session")),
        "{taken}"
    );
    let late = session.control.bind(LATE_PORT).expect("a free port");
    assert_eq!(late.local_addr().expect("addr").port(), LATE_PORT);
    // A clone asks over the same socket.
    let again = session.control.clone().bind(LATE_PORT + 1).expect("again");
    assert_eq!(again.local_addr().expect("addr").port(), LATE_PORT + 1);

    let procs = tree(session.helper.id());
    session.helper.kill().expect("kill");
    for pid in procs {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let status = session.helper.wait().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let gone = session
        .control
        .bind(LATE_PORT + 2)
        .expect_err("the helper is gone");
    assert!(gone.to_string().contains("exited"), "{gone}");
}

#[test]
fn only_chosen_descriptors_reach_the_command() {
    use clp_net::netns::NetnsSession;
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use std::os::fd::AsRawFd;

    let run = |keep: bool| {
        let (reader, writer) = std::io::pipe().expect("pipe");
        // Inheritable, as clp makes bubblewrap's --info-fd.
        fcntl(&writer, FcntlArg::F_SETFD(FdFlag::empty())).expect("clear close-on-exec");
        let fd = writer.as_raw_fd();
        let script = format!("echo kept >&{fd}");
        let argv = ["sh".into(), "-c".into(), script.into()];
        let mut helper = Command::new(HELPER);
        helper
            .arg("helper")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let keep_fds = if keep { vec![fd] } else { Vec::new() };
        let mut session =
            NetnsSession::spawn_keeping(helper, &[], &argv, &keep_fds).expect("spawn");
        drop(writer);
        let status = session.helper.wait().expect("wait");
        // `sh` fails (exit 2) when the descriptor is not there.
        assert_eq!(status.success(), keep, "{status}");
        // The command has exited: whatever it wrote is in the pipe. Read without
        // blocking (a process spawned meanwhile by another test may hold the writer).
        fcntl(&reader, FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).expect("non-blocking");
        let mut buf = [0u8; 64];
        match (&reader).read(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => String::new(),
            Err(e) => panic!("read: {e}"),
        }
    };
    assert_eq!(run(true), "kept\n");
    assert_eq!(run(false), "");
    let err = NetnsSession::spawn_keeping(Command::new(HELPER), &[], &["true".into()], &[3])
        .expect_err("3 is the control socket");
    assert!(err.to_string().contains("control socket"), "{err}");
}
