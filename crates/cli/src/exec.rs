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

/// Runs an interactive sandbox and stays its parent. bubblewrap's `--new-session` (which
/// stops the sandbox from typing into this terminal) also detaches Claude Code from the
/// terminal's signals, so window-size changes (SIGWINCH) would never reach it; clp learns
/// the sandbox's process group from `--info-fd` and forwards them. Exits with the
/// child's status.
pub fn supervise(plan: &LaunchPlan, env: BTreeMap<String, String>) -> Result<ExitCode, Failure> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use signal_hook::consts::{SIGHUP, SIGTERM, SIGWINCH};
    use std::io::Read;
    use std::os::fd::AsRawFd;

    let os = |what: &str, e: std::io::Error| Error::new(Kind::Os, what).caused_by(e);
    let (mut reader, writer) = std::io::pipe().map_err(|e| os("cannot make a pipe", e))?;
    fcntl(&writer, FcntlArg::F_SETFD(FdFlag::empty()))
        .map_err(|e| os("cannot pass the info pipe to bubblewrap", e.into()))?;
    let (program, rest) = plan
        .argv
        .split_first()
        .ok_or_else(|| Error::usage("nothing to run"))?;
    let mut child = match std::process::Command::new(program)
        .arg("--info-fd")
        .arg(writer.as_raw_fd().to_string())
        .args(rest)
        .env_clear()
        .envs(env)
        .current_dir(&plan.cwd)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Err(not_started(plan, program, e)),
    };
    drop(writer);
    let mut info = String::new();
    let _ = reader.read_to_string(&mut info);
    let pgrp = serde_json::from_str::<serde_json::Value>(&info)
        .ok()
        .and_then(|v| v.get("child-pid")?.as_i64())
        .map(|pid| nix::unistd::Pid::from_raw(pid as i32));
    if let Some(pgrp) = pgrp {
        let mut signals = signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGHUP])
            .map_err(|e| os("cannot watch signals", e))?;
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
                    let _ = nix::sys::signal::killpg(pgrp, sig);
                }
            }
        });
    }
    let status = child.wait().map_err(|e| os("waiting for the sandbox", e))?;
    Ok(exit_code(status))
}

/// A child's status as clp's own exit code: its code, or 128 + the signal that ended it.
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(code.clamp(0, 255) as u8)
}
