//! Starting the plan's program: exec (clp is replaced) or, for an interactive sandbox,
//! spawn and stay its parent. Returns only on failure, or with the child's exit code.

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::ExitCode;

use clp_core::{Error, Kind, LaunchPlan};

use crate::failure::Failure;

/// Replaces clp with the plan's program; returns only on failure.
pub fn exec(plan: &LaunchPlan, env: BTreeMap<String, String>) -> Failure {
    let Some((program, args)) = plan.argv.split_first() else {
        return Error::usage("nothing to run").into();
    };
    let err = std::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(&plan.cwd)
        .exec();
    not_started(plan, program, err)
}

fn not_started(plan: &LaunchPlan, program: &str, err: std::io::Error) -> Failure {
    if err.kind() == std::io::ErrorKind::NotFound {
        if !plan.cwd.is_dir() {
            let message = format!("the workspace `{}` does not exist", plan.cwd.display());
            return Error::host(message).into();
        }
        let hint = if program.ends_with("claude") {
            "install Claude Code: `npm install -g @anthropic-ai/claude-code`, or set \
             `claude.command` to its path"
                .to_owned()
        } else {
            format!("is `{program}` installed and on PATH?")
        };
        return Error::host(format!("cannot run `{program}`: not found"))
            .hint(hint)
            .into();
    }
    Error::new(Kind::Os, format!("cannot run `{program}`"))
        .caused_by(err)
        .into()
}

/// Runs a boundary's program and stays its parent until it ends, then returns its exit
/// code. The session shares clp's terminal and process group (its seccomp filter stops it
/// from typing into the terminal), so the terminal's own signals reach it: Ctrl-C and
/// Ctrl-\\ are Claude Code's to handle and clp ignores them, Ctrl-Z stops both, a window
/// size change reaches it directly. SIGTERM and SIGHUP sent to clp are passed on.
pub fn supervise(
    plan: &LaunchPlan,
    argv: &[String],
    env: BTreeMap<String, String>,
) -> Result<ExitCode, Failure> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let os = |what: &str, e: std::io::Error| Error::new(Kind::Os, what).caused_by(e);
    let (program, rest) = argv
        .split_first()
        .ok_or_else(|| Error::usage("nothing to run"))?;
    let ignored = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [SIGINT, SIGQUIT] {
        signal_hook::flag::register(sig, ignored.clone())
            .map_err(|e| os("cannot set up signals", e))?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP])
        .map_err(|e| os("cannot watch signals", e))?;
    let mut child = match std::process::Command::new(program)
        .args(rest)
        .env_clear()
        .envs(env)
        .current_dir(&plan.cwd)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Err(not_started(plan, program, e)),
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    let forward = std::thread::spawn(move || {
        for sig in signals.forever() {
            if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    });
    let status = child.wait().map_err(|e| os("waiting for the session", e));
    handle.close();
    let _ = forward.join();
    Ok(exit_code(status?))
}

/// A child's status as clp's own exit code: its code, or 128 + the signal that ended it.
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(code.clamp(0, 255) as u8)
}
