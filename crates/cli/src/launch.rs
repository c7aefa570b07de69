//! `use`, `run`, `render` and `doctor`: render a plan, check the backend, write the
//! plan's files, fetch secrets and exec.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clp_core::apply;
use clp_core::model::Level;
use clp_core::probe::{self, Health};
use clp_core::render::{
    plan_text, portable, render_files, render_run, render_use, LaunchPlan, Preflight, WritePolicy,
};
use clp_core::resolve::{Secret, Switch};

use crate::args::{Format, GlobalArgs, LaunchOpts, RenderArgs, RunArgs, UseArgs};
use crate::cmd::Ctx;
use crate::failure::Failure;

fn strings(args: &[std::ffi::OsString]) -> Result<Vec<String>, Failure> {
    args.iter()
        .map(|a| {
            a.clone()
                .into_string()
                .map_err(|a| Failure::user(format!("argument {a:?} is not UTF-8"), None))
        })
        .collect()
}

pub fn use_profile(g: &GlobalArgs, args: UseArgs) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (_, profile) = ctx.profile(&args.name)?;
    let plan = render_use(&profile, &ctx.host, &strings(&args.args)?)?;
    launch(&ctx, plan, &args.opts)
}

pub fn run_command(g: &GlobalArgs, args: RunArgs) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (_, profile) = ctx.profile(&args.name)?;
    let plan = render_run(&profile, &ctx.host, &strings(&args.command)?)?;
    launch(&ctx, plan, &args.opts)
}

fn launch(ctx: &Ctx, plan: LaunchPlan, opts: &LaunchOpts) -> Result<ExitCode, Failure> {
    if opts.dry_run {
        print!("{}", plan_text(&plan));
        return Ok(ExitCode::SUCCESS);
    }
    check_programs(ctx, &plan)?;
    if !opts.no_check {
        preflight(&plan)?;
    }
    apply_plan(&plan)?;
    let secrets = fetch_secrets(ctx, &plan)?;
    let env = plan.env.build(&ctx.host.env, &secrets);
    if plan.level == Level::Sandbox && ctx.host.tty {
        return supervise(&plan, env);
    }
    Err(exec(&plan, env))
}

/// Runs an interactive sandbox and stays its parent. bubblewrap's `--new-session` (which
/// stops the sandbox from typing into this terminal) also detaches Claude Code from the
/// terminal's signals, so window-size changes (SIGWINCH) would never reach it; clp learns
/// the sandbox's process group from `--info-fd` and forwards them. Exits with the
/// child's status.
fn supervise(plan: &LaunchPlan, env: BTreeMap<String, String>) -> Result<ExitCode, Failure> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use signal_hook::consts::{SIGHUP, SIGTERM, SIGWINCH};
    use std::io::Read;
    use std::os::fd::AsRawFd;

    let os = |what: &str, e: &dyn std::fmt::Display| Failure::Os(format!("{what}: {e}"));
    let (mut reader, writer) = std::io::pipe().map_err(|e| os("cannot make a pipe", &e))?;
    fcntl(&writer, FcntlArg::F_SETFD(FdFlag::empty()))
        .map_err(|e| os("cannot pass the info pipe to bubblewrap", &e))?;
    let (program, rest) = plan
        .argv
        .split_first()
        .ok_or_else(|| Failure::user("nothing to run", None))?;
    let mut child = std::process::Command::new(program)
        .arg("--info-fd")
        .arg(writer.as_raw_fd().to_string())
        .args(rest)
        .env_clear()
        .envs(env)
        .current_dir(&plan.cwd)
        .spawn()
        .map_err(|e| os(&format!("cannot run `{program}`"), &e))?;
    drop(writer);
    let mut info = String::new();
    let _ = reader.read_to_string(&mut info);
    let pgrp = serde_json::from_str::<serde_json::Value>(&info)
        .ok()
        .and_then(|v| v.get("child-pid")?.as_i64())
        .map(|pid| nix::unistd::Pid::from_raw(pid as i32));
    if let Some(pgrp) = pgrp {
        let mut signals = signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGHUP])
            .map_err(|e| os("cannot watch signals", &e))?;
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
                    let _ = nix::sys::signal::killpg(pgrp, sig);
                }
            }
        });
    }
    let status = child
        .wait()
        .map_err(|e| os("waiting for the sandbox", &e))?;
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Programs the plan needs must exist before anything is written.
fn check_programs(ctx: &Ctx, plan: &LaunchPlan) -> Result<(), Failure> {
    for p in &plan.preflight {
        if let Preflight::Program { name, install } = p {
            if ctx.host.program(name).is_none() {
                return Err(Failure::user(
                    format!(
                        "`{name}` is not installed (profile `{}` needs it)",
                        plan.profile
                    ),
                    Some(install.clone()),
                ));
            }
        }
    }
    Ok(())
}

/// Probes the backend: asks it to switch models when the profile says how, waits while
/// it loads (or is not up yet) for up to `backend.wait` seconds with a progress line,
/// fails when it stays down, and warns (or, after a switch, waits) when the profile's
/// model is not served.
fn preflight(plan: &LaunchPlan) -> Result<(), Failure> {
    let skip = "or skip this check with `--no-check`";
    let mut progress = Progress::default();
    let mut deadline = Instant::now();
    for p in &plan.preflight {
        match p {
            Preflight::Switch { switch } => switch_model(switch)?,
            Preflight::Health { url, wait } => {
                deadline = Instant::now() + Duration::from_secs((*wait).into());
                loop {
                    let state = probe::health(url, Duration::from_secs(2));
                    let waiting = match &state {
                        Health::Ready => break,
                        Health::Loading => "loading its model",
                        Health::Unreachable(_) => "not answering yet",
                        Health::Status(_) => "",
                    };
                    if !waiting.is_empty() && Instant::now() < deadline {
                        progress.tick(&format!("waiting for the backend at `{url}` ({waiting})"));
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                    progress.done("");
                    let waited = if *wait > 0 {
                        format!(" after waiting {wait}s")
                    } else {
                        String::new()
                    };
                    return Err(match state {
                        Health::Loading => Failure::user(
                            format!("the backend at `{url}` is still loading its model{waited}"),
                            Some(format!(
                                "wait and retry, set `backend.wait` to the seconds to wait, {skip}"
                            )),
                        ),
                        Health::Status(code) => Failure::user(
                            format!("the backend at `{url}` answered HTTP {code}"),
                            Some(format!("check the server's log, {skip}")),
                        ),
                        Health::Unreachable(why) => Failure::user(
                            format!("the backend at `{url}` is unreachable{waited}: {why}"),
                            Some(format!(
                                "start llama-server (or fix `backend.url`), set `backend.wait` to \
                                 wait for it, {skip}"
                            )),
                        ),
                        Health::Ready => unreachable!("handled above"),
                    });
                }
                progress.done(" ready");
            }
            Preflight::Model {
                url,
                model,
                required,
            } => {
                loop {
                    match probe::models(url, Duration::from_secs(2)) {
                        Ok(ids) if ids.iter().any(|i| i == model) => {
                            progress.done(" ready");
                            break;
                        }
                        _ if *required && Instant::now() < deadline => {
                            progress.tick(&format!("waiting for the backend to serve `{model}`"));
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        Ok(ids) => {
                            progress.done("");
                            let served = if ids.is_empty() {
                                "nothing".into()
                            } else {
                                ids.join(", ")
                            };
                            if *required {
                                return Err(Failure::user(
                                format!("the backend did not switch to `{model}`; it serves: {served}"),
                                Some(format!("check `backend.switch`, raise `backend.wait`, {skip}")),
                            ));
                            }
                            eprintln!(
                            "warning: the backend does not list the model `{model}`; it serves: {served}\n  \
                             hint: model names must match llama-server's `--alias`"
                        );
                            break;
                        }
                        Err(e) => {
                            progress.done("");
                            if *required {
                                return Err(Failure::user(
                                    format!("cannot list the backend's models at `{url}`: {e}"),
                                    Some(skip.into()),
                                ));
                            }
                            eprintln!("warning: cannot list the backend's models at `{url}`: {e}");
                            break;
                        }
                    }
                }
            }
            Preflight::Program { .. } => {}
        }
    }
    Ok(())
}

/// One line on stderr that grows a dot per tick while clp waits.
#[derive(Default)]
struct Progress {
    shown: Option<String>,
}

impl Progress {
    fn tick(&mut self, what: &str) {
        if self.shown.as_deref() != Some(what) {
            if self.shown.is_some() {
                eprintln!();
            }
            eprint!("{what} ");
            self.shown = Some(what.to_owned());
        } else {
            eprint!(".");
        }
        let _ = std::io::stderr().flush();
    }

    fn done(&mut self, end: &str) {
        if self.shown.take().is_some() {
            eprintln!("{end}");
        }
    }
}

/// Asks the backend to serve the profile's model.
fn switch_model(switch: &Switch) -> Result<(), Failure> {
    match switch {
        Switch::Command(cmd) => {
            eprintln!("switching the backend's model: {cmd}");
            let status = std::process::Command::new("sh")
                .args(["-c", cmd])
                .stdin(std::process::Stdio::null())
                .status()
                .map_err(|e| Failure::Os(format!("cannot run `{cmd}`: {e}")))?;
            if !status.success() {
                return Err(Failure::user(
                    format!("the switch command `{cmd}` failed ({status})"),
                    Some("fix `backend.switch.command`, or skip with `--no-check`".into()),
                ));
            }
        }
        Switch::Request { method, url, body } => {
            eprintln!("switching the backend's model: {method} {url}");
            probe::request(method, url, body.as_deref(), Duration::from_secs(30)).map_err(|e| {
                Failure::user(
                    format!("the switch request {method} `{url}` failed: {e}"),
                    Some("fix `backend.switch`, or skip with `--no-check`".into()),
                )
            })?;
        }
    }
    Ok(())
}

/// Creates the plan's dirs, files and links (atomically; unchanged files untouched).
pub fn apply_plan(plan: &LaunchPlan) -> Result<(), Failure> {
    // As root the plan's dirs belong to the sandbox user, who may have planted a symlink
    // in them from inside the boundary: never follow one when handing a path over.
    let chown = |path: &std::path::Path| -> Result<(), Failure> {
        let Some((uid, gid)) = plan.owner else {
            return Ok(());
        };
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(Failure::user(
                format!(
                    "`{}` is a symbolic link; clp will not hand it to uid {uid}",
                    path.display()
                ),
                Some("remove it (it may have been planted from inside the boundary)".into()),
            ));
        }
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| {
            Failure::Os(format!(
                "cannot hand `{}` to uid {uid}: {e}",
                path.display()
            ))
        })
    };
    for d in &plan.dirs {
        apply::create_dir(d, 0o700)?;
        chown(d)?;
    }
    for f in &plan.files {
        let created = match f.policy {
            WritePolicy::Replace => {
                apply::write_atomic(&f.path, f.contents.as_bytes(), f.mode)?;
                true
            }
            WritePolicy::CreateIfMissing => {
                apply::create_new(&f.path, f.contents.as_bytes(), f.mode)?
            }
        };
        if created {
            chown(&f.path)?;
        }
    }
    for l in &plan.links {
        apply::symlink_new(&l.target, &l.link)?;
    }
    Ok(())
}

fn fetch_secrets(ctx: &Ctx, plan: &LaunchPlan) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for (var, secret) in &plan.env.secrets {
        let value = match secret {
            Secret::Literal(v) => v.clone(),
            Secret::Env(name) => ctx.host.var(name).map(str::to_owned).ok_or_else(|| {
                Failure::user(
                    format!(
                        "`{name}` is not set (profile `{}` reads its credential from it)",
                        plan.profile
                    ),
                    Some(format!("export {name}=... before launching")),
                )
            })?,
            Secret::Command(cmd) => {
                let output = std::process::Command::new("sh")
                    .args(["-c", cmd])
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| Failure::Os(format!("cannot run `{cmd}`: {e}")))?;
                if !output.status.success() {
                    return Err(Failure::user(
                        format!("the credential command `{cmd}` failed ({})", output.status),
                        None,
                    ));
                }
                String::from_utf8_lossy(&output.stdout).trim().to_owned()
            }
        };
        out.insert(var.clone(), value);
    }
    Ok(out)
}

/// Replaces clp with the plan's program; returns only on failure.
fn exec(plan: &LaunchPlan, env: BTreeMap<String, String>) -> Failure {
    let Some((program, args)) = plan.argv.split_first() else {
        return Failure::user("nothing to run", None);
    };
    let err = std::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(&plan.cwd)
        .exec();
    if err.kind() == std::io::ErrorKind::NotFound {
        let hint = if program.ends_with("claude") {
            "install Claude Code: `npm install -g @anthropic-ai/claude-code`, or set \
             `claude.command` to its path"
                .to_owned()
        } else {
            format!("is `{program}` installed and on PATH?")
        };
        if !plan.cwd.is_dir() {
            return Failure::user(
                format!("the workspace `{}` does not exist", plan.cwd.display()),
                None,
            );
        }
        return Failure::user(format!("cannot run `{program}`: not found"), Some(hint));
    }
    Failure::Os(format!("cannot run `{program}`: {err}"))
}

pub fn render(g: &GlobalArgs, args: RenderArgs) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (_, profile) = ctx.profile(&args.name)?;
    let mut plan = render_use(&profile, &ctx.host, &[])?;
    if args.portable {
        plan = portable(&plan, &ctx.host);
    }
    if let Some(dir) = &args.out {
        for (name, contents) in render_files(&plan) {
            let path = dir.join(&name);
            apply::write_atomic(&path, contents.as_bytes(), 0o644)?;
            println!("{}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Text => print!("{}", plan_text(&plan)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("a plan serializes")
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn doctor(g: &GlobalArgs, name: Option<&str>) -> Result<ExitCode, Failure> {
    crate::doctor::run(g, name)
}
