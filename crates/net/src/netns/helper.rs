//! The helper's side: create the namespace, bind, start the sandbox command, then
//! serve bind requests and relay signals until the command exits.

use std::ffi::OsString;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{getegid, geteuid, getppid, Pid};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::{inherit, loopback, wire, CONTROL_FD, EXIT_SETUP_FAILED, EXIT_SPAWN_FAILED};
use crate::Error;

/// The helper's arguments, as [`super::NetnsSession::spawn`] appends them.
#[derive(Debug, PartialEq, Eq)]
struct HelperArgs {
    parent_pid: i32,
    ports: Vec<u16>,
    keep_fds: Vec<i32>,
    /// Empty with `--hold`: no command; the helper only holds the namespace (for a
    /// container engine to join) until clp closes the control socket.
    argv: Vec<OsString>,
}

impl HelperArgs {
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<HelperArgs, Error> {
        let bad = |what: &str| Error::HelperArgs(what.to_owned());
        let mut args = args.into_iter();
        let mut parent_pid = None;
        let mut ports = Vec::new();
        let mut keep_fds = Vec::new();
        let mut hold = false;
        let number = |flag: &str, value: Option<OsString>| {
            value
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| bad(&format!("`{flag}` needs a value")))
        };
        loop {
            let Some(arg) = args.next() else {
                return Err(bad("missing `--` before the command"));
            };
            match arg.to_str() {
                Some("--parent-pid") => {
                    let v = number("--parent-pid", args.next())?;
                    parent_pid = Some(v.parse::<i32>().map_err(|_| bad("bad `--parent-pid`"))?);
                }
                Some("--port") => {
                    let v = number("--port", args.next())?;
                    ports.push(v.parse::<u16>().map_err(|_| bad("bad `--port`"))?);
                }
                Some("--keep-fd") => {
                    let v = number("--keep-fd", args.next())?;
                    keep_fds.push(v.parse::<i32>().map_err(|_| bad("bad `--keep-fd`"))?);
                }
                Some("--hold") => hold = true,
                Some("--") => break,
                _ => return Err(bad(&format!("unexpected argument {arg:?}"))),
            }
        }
        let argv: Vec<OsString> = args.collect();
        if argv.is_empty() != hold {
            return Err(bad(if hold {
                "a command after `--` with `--hold`"
            } else {
                "no command after `--`"
            }));
        }
        Ok(HelperArgs {
            parent_pid: parent_pid.ok_or_else(|| bad("missing `--parent-pid`"))?,
            ports,
            keep_fds,
            argv,
        })
    }
}

/// Runs the helper and returns its exit code: the sandbox command's, or
/// [`EXIT_SETUP_FAILED`] / [`EXIT_SPAWN_FAILED`] after reporting the error to the
/// parent. Never prints.
///
/// `args` are the arguments after whatever clp used to select the helper role. Call
/// it first thing in `main`, while the process has a single thread: creating a user
/// namespace fails in a multi-threaded process.
pub fn helper_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let Ok(control) = inherit::claim_socket(CONTROL_FD) else {
        // Not started by NetnsSession::spawn: there is nobody to report to.
        return EXIT_SETUP_FAILED;
    };
    if rustix::io::fcntl_setfd(&control, rustix::io::FdFlags::CLOEXEC).is_err() {
        return EXIT_SETUP_FAILED;
    }
    match run(&control, args) {
        Ok(code) => code,
        Err((code, e)) => {
            let _ = wire::send(control.as_fd(), &format!("err {}", chain(&e)), &[]);
            code
        }
    }
}

/// The error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn run(control: &OwnedFd, args: impl IntoIterator<Item = OsString>) -> Result<i32, (i32, Error)> {
    let setup = |e| (EXIT_SETUP_FAILED, e);
    let args = HelperArgs::parse(args).map_err(setup)?;
    let listeners = prepare(&args).map_err(setup)?;
    // Registered before the child starts so that no SIGTERM is lost; handlers (unlike
    // SIG_IGN) reset to the default in the child at exec.
    let signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGQUIT, SIGTERM, SIGHUP]).map_err(|e| {
            setup(Error::Namespace {
                step: "install signal handlers".into(),
                source: e,
            })
        })?;
    if args.argv.is_empty() {
        hold(control, listeners, signals).map_err(setup)?;
        return Ok(0);
    }
    run_child(control, &args.argv, listeners, signals)
}

/// Everything before the listeners exist, in this order: die with the parent (and check
/// it is still there), close what is not ours, enter the namespaces, bring loopback up,
/// bind the ports.
fn prepare(args: &HelperArgs) -> Result<Vec<TcpListener>, Error> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| Error::Namespace {
        step: "set the parent-death signal".into(),
        source: e.into(),
    })?;
    // clp is the parent, or an ancestor a few launchers up (rootless Podman's
    // `podman unshare` re-executes itself); either way it must still be there.
    let ancestors = std::iter::successors(Some(getppid().as_raw()), |p| parent_of(*p)).take(4);
    if !ancestors.into_iter().any(|p| p == args.parent_pid) {
        return Err(Error::Helper("its parent has already exited".into()));
    }
    inherit::cloexec_all_but(&args.keep_fds)
        .map_err(|e| Error::io("mark close-on-exec the descriptors in", "/proc/self/fd", e))?;
    enter_namespace()?;
    loopback::bring_up().map_err(|e| Error::Namespace {
        step: "bring the loopback interface up".into(),
        source: e,
    })?;
    args.ports.iter().map(|p| bind(*p)).collect()
}

/// Hold: hands the listeners over, then keeps the namespace alive as long as this
/// process, which lives as long as clp keeps the control socket open (or until
/// SIGTERM/SIGHUP).
fn hold(
    control: &OwnedFd,
    listeners: Vec<TcpListener>,
    mut signals: signal_hook::iterator::Signals,
) -> Result<(), Error> {
    let ready = format!("ready {}", std::process::id());
    let sent = wire::send(control.as_fd(), &ready, &wire::borrow_all(&listeners));
    drop(listeners);
    sent.map_err(|e| Error::io("send the listeners over", "the control socket", e))?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGTERM || signal == SIGHUP {
                std::process::exit(0);
            }
        }
    });
    serve_requests(control);
    Ok(())
}

/// Starts the session's command in the namespace, hands the listeners over, passes
/// SIGTERM and SIGHUP on, and returns the command's exit code.
fn run_child(
    control: &OwnedFd,
    argv: &[OsString],
    listeners: Vec<TcpListener>,
    mut signals: signal_hook::iterator::Signals,
) -> Result<i32, (i32, Error)> {
    let program = argv[0].to_string_lossy().into_owned();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .spawn()
        .map_err(|e| (EXIT_SPAWN_FAILED, Error::io("run", &program, e)))?;
    let ready = format!("ready {}", std::process::id());
    let sent = wire::send(control.as_fd(), &ready, &wire::borrow_all(&listeners));
    drop(listeners);
    if let Err(e) = sent {
        let _ = child.kill();
        let _ = child.wait();
        let e = Error::io("send the listeners over", "the control socket", e);
        return Err((EXIT_SETUP_FAILED, e));
    }
    let child_pid = Pid::from_raw(child.id() as i32);
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGTERM || signal == SIGHUP {
                if let Ok(signal) = Signal::try_from(signal) {
                    let _ = kill(child_pid, signal);
                }
            }
            // SIGINT and SIGQUIT: ignored; the terminal sent them to the whole
            // process group, the child included.
        }
    });
    if let Ok(requests) = control.try_clone() {
        std::thread::spawn(move || serve_requests(&requests));
    }
    let status = loop {
        match child.wait() {
            Ok(status) => break status,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let e = Error::io("wait for", format!("`{program}`"), e);
                return Err((EXIT_SETUP_FAILED, e));
            }
        }
    };
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Creates the namespaces: a network namespace, inside a user namespace that maps
/// only our own uid and gid unless we are root.
fn enter_namespace() -> Result<(), Error> {
    let (uid, gid) = (geteuid(), getegid());
    if uid.is_root() {
        return unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::Namespace {
            step: "unshare(CLONE_NEWNET) as root failed (is CAP_SYS_ADMIN missing, as in \
                   a container?)"
                .into(),
            source: e.into(),
        });
    }
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::Namespace {
            step: "unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: unprivileged user \
                   namespaces look unavailable (check `sysctl user.max_user_namespaces`, \
                   `kernel.unprivileged_userns_clone` and \
                   `kernel.apparmor_restrict_unprivileged_userns`)"
                .into(),
            source: e.into(),
        }
    })?;
    for (path, text) in [
        ("/proc/self/uid_map", format!("{uid} {uid} 1\n")),
        ("/proc/self/setgroups", "deny\n".to_owned()),
        ("/proc/self/gid_map", format!("{gid} {gid} 1\n")),
    ] {
        std::fs::write(path, text).map_err(|e| Error::io("write", path, e))?;
    }
    Ok(())
}

fn bind(port: u16) -> Result<TcpListener, Error> {
    TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| Error::io("bind", format!("127.0.0.1:{port} inside the session"), e))
}

/// The parent of process `pid`, from `/proc`.
fn parent_of(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// Answers `bind PORT` until the parent closes its end.
fn serve_requests(control: &OwnedFd) {
    while let Ok(Some((text, _))) = wire::recv(control.as_fd()) {
        let answer = match text.strip_prefix("bind ").map(str::parse::<u16>) {
            Some(Ok(port)) => bind(port),
            _ => Err(Error::Protocol(format!("unknown request `{text}`"))),
        };
        let port = text.strip_prefix("bind ").unwrap_or("?");
        let sent = match answer {
            Ok(listener) => wire::send(control.as_fd(), &format!("ok {port}"), &[listener.as_fd()]),
            Err(e) => wire::send(control.as_fd(), &format!("fail {port} {}", chain(&e)), &[]),
        };
        if sent.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn helper_args_round_trip() {
        let parsed = HelperArgs::parse(args(&[
            "--parent-pid",
            "42",
            "--port",
            "8080",
            "--keep-fd",
            "7",
            "--port",
            "0",
            "--",
            "bwrap",
            "--",
            "x",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parsed,
            HelperArgs {
                parent_pid: 42,
                ports: vec![8080, 0],
                keep_fds: vec![7],
                argv: args(&["bwrap", "--", "x"]),
            }
        );
        for bad in [
            &["--parent-pid", "42", "true"][..],
            &["--parent-pid", "42", "--"],
            &["--port", "1", "--", "true"],
            &["--parent-pid", "x", "--", "true"],
            &["--parent-pid", "1", "--port", "70000", "--", "true"],
        ] {
            assert!(HelperArgs::parse(args(bad)).is_err(), "{bad:?}");
        }
    }
}
