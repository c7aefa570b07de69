//! The session's network namespace: the parent's side ([`NetnsSession`]) and the
//! helper's ([`helper_main`]).
//!
//! clp re-executes itself as the helper. The helper creates a network namespace (and,
//! for a normal user, a user namespace mapping only the user's own ids, so files keep
//! their owner), brings its loopback up, binds the requested ports on 127.0.0.1 inside
//! it, starts the sandbox command (bubblewrap with `--unshare-all --share-net`) as its
//! child, and hands the listeners to the parent over a Unix socket. It then stays the
//! sandbox's parent: it answers later `bind` requests (an IDE started mid-session),
//! ignores SIGINT and SIGQUIT (the terminal sends them to the whole process group),
//! forwards SIGTERM and SIGHUP, and exits with the child's exit code (128+N for a
//! signal). It dies with its parent (`PR_SET_PDEATHSIG`), and bubblewrap's
//! `--die-with-parent` takes the sandbox down with it.

mod helper;
mod inherit;
mod loopback;
mod wire;

use std::ffi::OsString;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

pub use helper::helper_main;

use crate::Error;

/// The descriptor number the control socket has in the helper.
const CONTROL_FD: i32 = 3;

/// How long the parent waits for an answer from the helper.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub use clp_core::network::HELPER_PID;

/// Exit code of a helper that could not set up the namespace or its listeners.
pub const EXIT_SETUP_FAILED: i32 = 125;
/// Exit code of a helper that could not start the sandbox command.
pub const EXIT_SPAWN_FAILED: i32 = 127;

/// A started helper: its process, its control channel, and the listeners it bound.
#[derive(Debug)]
pub struct NetnsSession {
    /// The helper process (the sandbox's parent), or its launcher (`podman unshare`).
    pub helper: HelperProcess,
    /// The helper's own process id (a launcher's child's, when there is one): its
    /// `/proc/PID/ns/net` is the session's network namespace.
    pub helper_pid: u32,
    /// Asks the helper for more listeners.
    pub control: HelperControl,
    /// One listener per requested port, in the order requested, each bound to
    /// 127.0.0.1 inside the namespace (port 0: one the kernel chose; see
    /// [`TcpListener::local_addr`]).
    pub listeners: Vec<(u16, TcpListener)>,
}

impl NetnsSession {
    /// Starts the helper and waits until it has bound `ports` and started `argv`.
    ///
    /// `helper` is the command that runs [`helper_main`]: clp's own binary with
    /// whatever argument makes it call `helper_main` with the remaining arguments.
    /// Its environment, working directory and stdio are the sandbox's (the helper
    /// passes them on), so set them on `helper`. This function appends the helper's
    /// arguments and maps the control socket to descriptor 3.
    ///
    /// Call it from a thread that lives as long as the session (the main thread):
    /// the helper gets SIGKILL when the thread that spawned it exits
    /// (`PR_SET_PDEATHSIG` follows the thread, not the process).
    ///
    /// The sandbox command inherits stdio only: the helper marks every other
    /// descriptor close-on-exec (see [`spawn_keeping`](Self::spawn_keeping)).
    pub fn spawn(helper: Command, ports: &[u16], argv: &[OsString]) -> Result<NetnsSession, Error> {
        Self::spawn_keeping(helper, ports, argv, &[])
    }

    /// [`spawn`](Self::spawn), passing descriptors `keep` on to the sandbox command
    /// (bubblewrap's `--info-fd`, say). Each must be open without close-on-exec in
    /// this process, so that the helper inherits it, and must not be 0-3 (3 is the
    /// helper's control socket).
    pub fn spawn_keeping(
        helper: Command,
        ports: &[u16],
        argv: &[OsString],
        keep: &[RawFd],
    ) -> Result<NetnsSession, Error> {
        if argv.is_empty() {
            return Err(Error::HelperArgs("no command to run".into()));
        }
        Self::start(helper, ports, argv, keep)
    }

    /// Starts the helper without a command: it makes the namespace, binds `ports` and
    /// holds the namespace (at `/proc/{helper_pid}/ns/net`) until the session is dropped,
    /// for a container engine started by clp to join.
    pub fn hold(helper: Command, ports: &[u16]) -> Result<NetnsSession, Error> {
        Self::start(helper, ports, &[], &[])
    }

    fn start(
        mut helper: Command,
        ports: &[u16],
        argv: &[OsString],
        keep: &[RawFd],
    ) -> Result<NetnsSession, Error> {
        if let Some(fd) = keep.iter().find(|fd| **fd <= CONTROL_FD) {
            return Err(Error::HelperArgs(format!(
                "descriptor {fd} cannot be passed on (0-2 always are, 3 is the control socket)"
            )));
        }
        if ports.len() > wire::MAX_FDS {
            return Err(Error::HelperArgs(format!(
                "at most {} ports at start, {} asked",
                wire::MAX_FDS,
                ports.len()
            )));
        }
        let (ours, theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::io("create", "the helper's control socket pair", e.into()))?;
        rustix::net::sockopt::set_socket_timeout(
            &ours,
            rustix::net::sockopt::Timeout::Recv,
            Some(ANSWER_TIMEOUT),
        )
        .map_err(|e| Error::io("set a timeout on", "the helper's control socket", e.into()))?;

        helper
            .arg("--parent-pid")
            .arg(std::process::id().to_string());
        for port in ports {
            helper.arg("--port").arg(port.to_string());
        }
        for fd in keep {
            helper.arg("--keep-fd").arg(fd.to_string());
        }
        if argv.is_empty() {
            helper.arg("--hold");
        }
        helper.arg("--").args(argv);
        helper
            .fd_mappings(vec![FdMapping {
                parent_fd: theirs,
                child_fd: CONTROL_FD,
            }])
            .map_err(|e| Error::HelperArgs(e.to_string()))?;
        let program = helper.get_program().to_string_lossy().into_owned();
        let child = helper
            .spawn()
            .map_err(|e| Error::io("run the network namespace helper", &program, e))?;
        // The Command holds our copy of the helper's end: close it, or the helper's
        // death would never show as end-of-file here.
        drop(helper);
        let mut process = HelperProcess { child };
        let (helper_pid, listeners) = ready(&ours, &mut process, ports)?;
        Ok(NetnsSession {
            helper_pid,
            helper: process,
            control: HelperControl {
                sock: Arc::new(Mutex::new(ours)),
            },
            listeners,
        })
    }
}

/// The helper's first answer: `ready PID` with one listener per port, or why not.
fn ready(
    ours: &OwnedFd,
    process: &mut HelperProcess,
    ports: &[u16],
) -> Result<(u32, Vec<(u16, TcpListener)>), Error> {
    let answer = wire::recv(ours.as_fd())
        .map_err(|e| Error::io("read from", "the network namespace helper", timeout_hint(e)));
    let (text, fds) = match answer {
        Ok(Some(message)) => message,
        Ok(None) => {
            let status = process.wait_briefly();
            return Err(Error::Helper(format!(
                "it exited before reporting ({})",
                status.map_or_else(|| "still running".to_owned(), |s| s.to_string())
            )));
        }
        Err(e) => return Err(e),
    };
    if let Some(why) = text.strip_prefix("err ") {
        return Err(Error::Helper(why.to_owned()));
    }
    let helper_pid = text
        .strip_prefix("ready ")
        .and_then(|p| p.parse::<u32>().ok());
    match helper_pid {
        Some(pid) if fds.len() == ports.len() => {
            let listeners = ports
                .iter()
                .copied()
                .zip(fds.into_iter().map(TcpListener::from))
                .collect();
            Ok((pid, listeners))
        }
        _ => Err(Error::Protocol(format!(
            "expected `ready` with {} listeners, got `{text}` with {}",
            ports.len(),
            fds.len()
        ))),
    }
}

fn timeout_hint(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut {
        io::Error::new(io::ErrorKind::TimedOut, "no answer within 10 s")
    } else {
        e
    }
}

/// The helper process. Dropping it kills the helper (and so the sandbox) if it is
/// still running.
#[derive(Debug)]
pub struct HelperProcess {
    child: Child,
}

impl HelperProcess {
    /// The helper's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the helper; its exit code is the sandbox command's (128+N when a
    /// signal N ended it; [`EXIT_SETUP_FAILED`], [`EXIT_SPAWN_FAILED`] for the helper's
    /// own failures).
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        self.child
            .wait()
            .map_err(|e| Error::io("wait for", format!("helper process {}", self.id()), e))
    }

    /// The exit status if the helper has ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        self.child
            .try_wait()
            .map_err(|e| Error::io("wait for", format!("helper process {}", self.id()), e))
    }

    /// Kills the helper with SIGKILL; the sandbox dies with it.
    pub fn kill(&mut self) -> Result<(), Error> {
        self.child
            .kill()
            .map_err(|e| Error::io("kill", format!("helper process {}", self.id()), e))
    }

    fn wait_briefly(&mut self) -> Option<ExitStatus> {
        for _ in 0..50 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }
}

impl Drop for HelperProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The parent's end of the control socket; clones share it.
#[derive(Debug, Clone)]
pub struct HelperControl {
    sock: Arc<Mutex<OwnedFd>>,
}

impl HelperControl {
    /// Asks the helper for a listener on 127.0.0.1:`port` inside the namespace (for
    /// an IDE that started after the session). The helper's refusal (the port is
    /// taken) is [`Error::Helper`].
    pub fn bind(&self, port: u16) -> Result<TcpListener, Error> {
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        let target = format!("127.0.0.1:{port} inside the session");
        wire::send(sock.as_fd(), &format!("bind {port}"), &[]).map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                Error::Helper("it has exited".into())
            }
            _ => Error::io("ask the helper to bind", &target, e),
        })?;
        let ok = format!("ok {port}");
        let fail = format!("fail {port} ");
        loop {
            let answer = wire::recv(sock.as_fd())
                .map_err(|e| Error::io("read the helper's answer for", &target, timeout_hint(e)))?;
            let Some((text, fds)) = answer else {
                return Err(Error::Helper("it has exited".into()));
            };
            if text == ok {
                let mut fds = fds.into_iter();
                return match (fds.next(), fds.next()) {
                    (Some(fd), None) => Ok(TcpListener::from(fd)),
                    _ => Err(Error::Protocol(format!("`{text}` without one listener"))),
                };
            }
            if let Some(why) = text.strip_prefix(&fail) {
                return Err(Error::Helper(why.to_owned()));
            }
            // The late answer to an earlier request that timed out: drop it (and any
            // listener it carries).
            if !(text.starts_with("ok ") || text.starts_with("fail ")) {
                return Err(Error::Protocol(format!("unexpected answer `{text}`")));
            }
        }
    }
}
