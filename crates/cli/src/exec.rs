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

/// clp's own binary, which a filtered session re-executes as its namespace helper.
pub fn own_binary() -> Result<std::path::PathBuf, Failure> {
    std::env::current_exe().map_err(|e| {
        Error::new(Kind::Os, "cannot find clp's own binary")
            .caused_by(e)
            .into()
    })
}

/// A child's status as clp's own exit code: its code, or 128 + the signal that ended it.
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(code.clamp(0, 255) as u8)
}
