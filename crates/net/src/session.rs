//! A session's life, with clp as its parent: the child started, the terminal's signals
//! left to it, SIGTERM and SIGHUP passed on, its exit code returned; and for a filtered
//! network, the helper's namespace with the relays, the proxies and the IDE watch served
//! from clp's process until the session ends.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use clp_core::host::Host;
use clp_core::model::Level;
use clp_core::network::{NetworkPlan, HELPER_PID};
use clp_core::plan::LaunchPlan;
use clp_core::{apply, watch};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use crate::log::DecisionLog;
use crate::netns::{HelperControl, NetnsSession};
use crate::policy::Allowlist;
use crate::proxy::{serve_proxy, Pinned, ProxyConfig};
use crate::relay::serve_relay;
use crate::resolve::{parse_test_hosts, Resolver};
use crate::socks::serve_socks;
use crate::{Error, ServerHandle};

/// How often the IDE lock dir is looked at for an IDE started during the session.
const IDE_POLL: Duration = Duration::from_millis(500);

/// Leaves Ctrl-C and Ctrl-\ to the session (they reach the whole foreground process
/// group; Claude Code handles them) and passes SIGTERM and SIGHUP sent to clp on to
/// `pid`. Returns the guard that stops forwarding when dropped.
pub fn forward_signals(pid: u32) -> Result<Forwarding, Error> {
    let ignored = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGQUIT] {
        signal_hook::flag::register(sig, ignored.clone())
            .map_err(|e| Error::io("set up", "the signal handlers", e))?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP])
        .map_err(|e| Error::io("watch", "SIGTERM and SIGHUP", e))?;
    let handle = signals.handle();
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let thread = std::thread::spawn(move || {
        for sig in signals.forever() {
            if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    });
    Ok(Forwarding {
        handle,
        thread: Some(thread),
    })
}

/// Signals passed on to a session while this lives.
pub struct Forwarding {
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `command` (its environment, directory and stdio set) as the session: clp's
/// child, with signals passed on; returns its status.
pub fn supervise(command: Command) -> Result<ExitStatus, Error> {
    supervise_mirrored(command, None)
}

/// [`supervise`], with the IDE view kept current meanwhile when `ides` says so. When the
/// session ends, both helper threads are told to stop before either is waited for, so
/// that their wake-ups overlap.
fn supervise_mirrored(mut command: Command, ides: Option<IdeSync>) -> Result<ExitStatus, Error> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mirror = ides.map(Mirror::start);
    let mut child = command.spawn().map_err(|e| Error::io("run", &program, e))?;
    let forwarding = forward_signals(child.id())?;
    let status = child.wait().map_err(|e| Error::io("wait for", &program, e));
    if let Some(m) = &mirror {
        m.stop();
    }
    drop(forwarding);
    drop(mirror);
    status
}

/// How a boundary session (level B or C) ended: its status, and what it left in the
/// workspace that would run outside the boundary.
#[derive(Debug)]
pub struct Outcome {
    /// The session's exit status.
    pub status: ExitStatus,
    /// What it left behind.
    pub report: watch::Report,
}

/// Carries out a boundary plan (levels B and C) whose files are written and secrets
/// fetched: the session's own dir made (its IDE view, and a container's secrets and
/// lock), nothing inherited crosses in, every mount source is opened without following
/// links, the session runs (its network filtered when the plan says so) while clp keeps
/// its IDE view current, and what it left behind is held or reported. `output` captures
/// stdout and stderr (`clp doctor`); the terminal's otherwise.
pub fn launch(
    plan: &LaunchPlan,
    host: &Host,
    mut secrets: BTreeMap<String, String>,
    clp: PathBuf,
    output: Option<(File, File)>,
) -> Result<Outcome, clp_core::Error> {
    let plan = &plan.for_session(&std::process::id().to_string());
    let session = clp_core::session::create(plan, &secrets)?.map(Arc::new);
    if plan.level == Level::Container {
        // The container reads them from the session dir, never from its environment.
        secrets.clear();
    }
    let opened = apply::prepare(plan)?;
    let before = watch::before(plan);
    let config = watch::config::before(plan);
    let keep: Vec<RawFd> = opened.fds.iter().map(|f| f.as_raw_fd()).collect();
    let ides = session
        .clone()
        .map(|s| -> IdeSync { Arc::new(move || s.sync_ide()) });
    let status = run(Spec {
        plan,
        argv: &opened.argv,
        keep: &keep,
        env: plan.env.build(&host.env, &secrets),
        clp,
        output,
        ides,
    })
    .map_err(|e| clp_core::Error::host("cannot run the session").caused_by(e))?;
    drop(session);
    let mut report = watch::after(plan, &before);
    report.findings.extend(watch::config::after(plan, &config));
    Ok(Outcome { status, report })
}

/// Brings a session's IDE view up to date; returns the ports of the IDEs it shows.
pub type IdeSync = Arc<dyn Fn() -> Vec<u16> + Send + Sync>;

/// The hidden first argument that makes clp the network namespace helper.
pub const HELPER_ARG: &str = "__netns-helper";

/// A session to start: what clp rendered and prepared.
pub struct Spec<'a> {
    /// The plan (level, working directory, network).
    pub plan: &'a LaunchPlan,
    /// The program and its arguments, descriptors filled in.
    pub argv: &'a [String],
    /// The descriptors the argv names, to pass on.
    pub keep: &'a [RawFd],
    /// The session's whole environment.
    pub env: BTreeMap<String, String>,
    /// clp's own binary, re-executed as the namespace helper of a filtered session.
    pub clp: PathBuf,
    /// Where the session's stdout and stderr go; the terminal's when `None`.
    pub output: Option<(File, File)>,
    /// Keeps the session's IDE view current while it runs (levels B and C).
    pub ides: Option<IdeSync>,
}

/// Runs a session of any level with clp as its parent, its network filtered when the
/// plan says so, and returns its status.
pub fn run(spec: Spec) -> Result<ExitStatus, Error> {
    let Spec {
        plan,
        argv,
        keep,
        env,
        clp,
        output,
        ides,
    } = spec;
    let Some((program, rest)) = argv.split_first() else {
        return Err(Error::HelperArgs("no command to run".into()));
    };
    let stdio = |c: &mut Command| -> Result<(), Error> {
        if let Some((out, err)) = &output {
            let dup = |f: &File| {
                f.try_clone()
                    .map_err(|e| Error::io("pass", "the output file", e))
            };
            c.stdout(dup(out)?).stderr(dup(err)?).stdin(Stdio::null());
        }
        Ok(())
    };
    let Some(net) = &plan.network else {
        let mut command = Command::new(program);
        command
            .args(rest)
            .env_clear()
            .envs(&env)
            .current_dir(&plan.cwd);
        stdio(&mut command)?;
        return supervise_mirrored(command, ides);
    };
    // Rootless Podman: the helper runs inside Podman's user namespace.
    let mut helper = match net.helper_prefix.split_first() {
        Some((first, prefix_rest)) => {
            let mut c = Command::new(first);
            c.args(prefix_rest).arg(&clp);
            c
        }
        // Through /proc/self/exe: clp's binary may have been replaced (an upgrade)
        // since it started, and the helper must be this very clp.
        None => {
            let mut c = Command::new("/proc/self/exe");
            c.arg0(&clp);
            c
        }
    };
    helper
        .arg(HELPER_ARG)
        .env_clear()
        .envs(&env)
        .current_dir(&plan.cwd);
    stdio(&mut helper)?;
    if plan.level == Level::Container {
        run_container_filtered(net, helper, ides, |pid| {
            let mut engine = Command::new(program);
            engine
                .args(rest.iter().map(|a| a.replace(HELPER_PID, pid)))
                .env_clear()
                .envs(&env)
                .current_dir(&plan.cwd);
            stdio(&mut engine)?;
            Ok(engine)
        })
    } else {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        run_filtered(net, helper, &argv, keep, ides)
    }
}

/// Keeps an IDE view current from a thread of its own while it lives (an unfiltered
/// session: the IDEs' ports are reachable as they are).
struct Mirror {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mirror {
    fn start(sync: IdeSync) -> Mirror {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                sync();
                std::thread::park_timeout(IDE_POLL);
            }
        });
        Mirror {
            stop,
            thread: Some(thread),
        }
    }

    /// Tells the thread to stop, without waiting for it.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs a filtered session: `helper` (clp re-executed as the namespace helper, with the
/// session's environment, directory and stdio) creates the network namespace and runs
/// `argv` (bubblewrap) in it, passing `keep` on; clp serves `plan`'s relays and proxies
/// and relays IDEs that start meanwhile, until the session ends. Returns its status.
///
/// Call it from the main thread: the helper dies with the thread that spawned it.
pub fn run_filtered(
    plan: &NetworkPlan,
    helper: Command,
    argv: &[OsString],
    keep: &[RawFd],
    ides: Option<IdeSync>,
) -> Result<ExitStatus, Error> {
    let config = proxy_config(plan)?;
    let session = NetnsSession::spawn_keeping(helper, &ports(plan), argv, keep)?;
    let NetnsSession {
        mut helper,
        control,
        listeners,
        ..
    } = session;
    let _forwarding = forward_signals(helper.id())?;
    serve(plan, config, listeners, control, ides, move || {
        helper.wait()
    })
}

/// Runs a filtered container session: `helper` holds the network namespace (and binds
/// its listeners), the engine (`podman run ...`, made by `engine` once the helper's pid is
/// known, and started by clp from the host's network namespace) joins it through
/// `--network=ns:/proc/{helper-pid}/ns/net`; clp serves the relays and proxies until the
/// engine exits, then lets the namespace go.
pub fn run_container_filtered(
    plan: &NetworkPlan,
    helper: Command,
    ides: Option<IdeSync>,
    engine: impl FnOnce(&str) -> Result<Command, Error>,
) -> Result<ExitStatus, Error> {
    let config = proxy_config(plan)?;
    let session = NetnsSession::hold(helper, &ports(plan))?;
    let mut engine = engine(&session.helper_pid.to_string())?;
    let program = engine.get_program().to_string_lossy().into_owned();
    let mut child = engine.spawn().map_err(|e| Error::io("run", &program, e))?;
    let _forwarding = forward_signals(child.id())?;
    let NetnsSession {
        helper,
        control,
        listeners,
        ..
    } = session;
    let status = serve(plan, config, listeners, control, ides, move || {
        child.wait().map_err(|e| Error::io("wait for", &program, e))
    });
    drop(helper);
    status
}

/// The ports the helper binds at start: the relays', then the proxies'.
fn ports(plan: &NetworkPlan) -> Vec<u16> {
    let mut ports: Vec<u16> = plan.relays.iter().map(|r| r.port).collect();
    ports.extend([plan.proxy_port, plan.socks_port]);
    ports
}

/// Serves the listeners (relays, proxy) and relays new IDEs until `wait` returns the
/// session's status.
fn serve(
    plan: &NetworkPlan,
    config: ProxyConfig,
    listeners: Vec<(u16, std::net::TcpListener)>,
    control: HelperControl,
    ides: Option<IdeSync>,
    wait: impl FnOnce() -> Result<ExitStatus, Error> + Send + 'static,
) -> Result<ExitStatus, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start", "the proxy's runtime", e))?;
    runtime.block_on(async move {
        let mut servers: Vec<ServerHandle> = Vec::new();
        let mut relayed: BTreeSet<u16> = BTreeSet::new();
        for (port, listener) in listeners {
            if port == plan.proxy_port {
                servers.push(serve_proxy(listener, config.clone())?);
            } else if port == plan.socks_port {
                servers.push(serve_socks(listener, config.clone())?);
            } else if let Some(r) = plan.relays.iter().find(|r| r.port == port) {
                servers.push(serve_relay(listener, r.target)?);
                relayed.insert(port);
            }
        }
        let taken: BTreeSet<u16> = [plan.proxy_port, plan.socks_port].into();
        let watch = ides.map(|sync| tokio::spawn(watch_ides(sync, control, relayed, taken)));
        let status = tokio::task::spawn_blocking(wait)
            .await
            .map_err(|e| Error::Helper(format!("waiting for the session failed: {e}")))?;
        if let Some(w) = watch {
            w.abort();
        }
        for s in servers {
            s.shutdown().await;
        }
        status
    })
}

/// The proxy's configuration for `plan`: its allowlist, the backend pinned (a remote
/// backend resolved now, once), the test resolver map when given, the decision log.
fn proxy_config(plan: &NetworkPlan) -> Result<ProxyConfig, Error> {
    let mut config = ProxyConfig::new(Allowlist::new(plan.allow.clone()));
    for pin in &plan.pinned {
        config
            .pinned
            .push(Pinned::new(&pin.host, pin.port, pin.target)?);
    }
    if let Some((host, port)) = &plan.remote_backend {
        let target = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| Error::io("resolve", format!("the backend {host}"), e))?
            .next()
            .ok_or_else(|| Error::Helper(format!("the backend `{host}` has no address")))?;
        config.pinned.push(Pinned::new(host, *port, target)?);
    }
    if let Some(map) = &plan.test_hosts {
        config.resolver = Resolver::with_map(parse_test_hosts(map)?)?;
    }
    if let Some(dir) = plan.log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir.display(), e))?;
    }
    config.log = Some(Arc::new(DecisionLog::open(&plan.log)?));
    Ok(config)
}

/// Keeps the session's IDE view current and relays every IDE that appears during the
/// session (its lock file `<port>.lock`) to the host's `127.0.0.1:<port>`.
async fn watch_ides(
    sync: IdeSync,
    control: HelperControl,
    mut relayed: BTreeSet<u16>,
    taken: BTreeSet<u16>,
) {
    let mut servers = Vec::new();
    loop {
        let sync = sync.clone();
        let ports = tokio::task::spawn_blocking(move || sync())
            .await
            .unwrap_or_default();
        for port in ports {
            if relayed.contains(&port) || taken.contains(&port) {
                continue;
            }
            relayed.insert(port);
            let control = control.clone();
            let bound = tokio::task::spawn_blocking(move || control.bind(port)).await;
            if let Ok(Ok(listener)) = bound {
                let target = SocketAddr::from(([127, 0, 0, 1], port));
                if let Ok(s) = serve_relay(listener, target) {
                    servers.push(s);
                }
            }
        }
        tokio::time::sleep(IDE_POLL).await;
    }
}
