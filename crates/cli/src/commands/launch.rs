//! `clp use` and `clp run`: render, print (`--dry-run`) or check (with a spinner while the
//! backend loads or switches models), write, fetch secrets and start the program.

use std::process::ExitCode;

use clp_core::model::Level;
use clp_core::preflight;
use clp_core::render::{render_run, render_use};
use clp_core::report::plan_text;
use clp_core::{apply, secret, Error, Host, LaunchPlan, Profile};

use crate::args::{GlobalArgs, LaunchOpts, RunArgs, UseArgs};
use crate::context::Ctx;
use crate::exec;
use crate::failure::Failure;
use crate::term::Progress;

fn strings(args: &[std::ffi::OsString]) -> Result<Vec<String>, Failure> {
    args.iter()
        .map(|a| {
            a.clone()
                .into_string()
                .map_err(|a| Error::usage(format!("argument {a:?} is not UTF-8")).into())
        })
        .collect()
}

pub fn use_profile(g: &GlobalArgs, args: UseArgs) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (_, profile) = ctx.profile(&args.name)?;
    let argv = strings(&args.args)?;
    launch(&ctx, &profile, &|p, h| render_use(p, h, &argv), &args.opts)
}

pub fn run_command(g: &GlobalArgs, args: RunArgs) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (_, profile) = ctx.profile(&args.name)?;
    let argv = strings(&args.command)?;
    launch(&ctx, &profile, &|p, h| render_run(p, h, &argv), &args.opts)
}

/// `clp --resume ID` / `clp resume ID`: the profile whose session store holds the
/// session, launched from the directory the session ran in.
pub fn resume(
    g: &GlobalArgs,
    id: &str,
    args: Vec<std::ffi::OsString>,
) -> Result<ExitCode, Failure> {
    clp_core::resume::check_id(id)?;
    let mut ctx = Ctx::new(g)?;
    let stores = clp_core::resume::stores(&ctx.catalog, &ctx.overrides, &ctx.host);
    let found = clp_core::resume::find(id, &stores).ok_or_else(|| {
        Error::usage(format!(
            "no profile's session store holds the session `{id}`"
        ))
        .hint(
            "a session of plain `claude` (or of the `oauth` profile) resumes with `claude \
             --resume ID`",
        )
    })?;
    if let Some(cwd) = found.cwd.filter(|c| c.is_dir() && *c != ctx.host.cwd) {
        std::env::set_current_dir(&cwd).map_err(|e| Error::io("cannot enter", &cwd, e))?;
        ctx = Ctx::new(g)?;
    }
    let (_, profile) = ctx.profile(&found.profile)?;
    let mut argv = vec!["--resume".to_owned(), id.to_owned()];
    argv.extend(strings(&args)?);
    let opts = LaunchOpts {
        dry_run: false,
        no_check: false,
    };
    launch(&ctx, &profile, &|p, h| render_use(p, h, &argv), &opts)
}

type Render<'a> = dyn Fn(&Profile, &Host) -> Result<LaunchPlan, Error> + 'a;

fn launch(
    ctx: &Ctx,
    profile: &Profile,
    render: &Render,
    opts: &LaunchOpts,
) -> Result<ExitCode, Failure> {
    let mut plan = render(profile, &ctx.host)?;
    if opts.dry_run {
        print!("{}", plan_text(&plan));
        return Ok(ExitCode::SUCCESS);
    }
    preflight::check_programs(&plan, &ctx.host)?;
    if !opts.no_check {
        let mut progress = Progress::new();
        let facts = preflight::run(&plan, &mut |e| progress.event(e))?;
        drop(progress);
        // What the server said (its context) where the profile is silent.
        if let Some(refined) = facts.apply(profile) {
            plan = render(&refined, &ctx.host)?;
        }
    }
    let _applied = apply::apply(&plan)?;
    let secrets = secret::fetch(&plan, &ctx.host)?;
    if plan.level == Level::Env {
        let env = plan.env.build(&ctx.host.env, &secrets);
        return Err(exec::exec(&plan, env));
    }
    // Levels B and C: clp stays the parent, to check what the session left behind.
    let outcome = clp_net::session::launch(&plan, &ctx.host, secrets, exec::own_binary()?, None)?;
    for line in outcome.report.lines() {
        eprintln!("clp: {line}");
    }
    Ok(exec::exit_code(outcome.status))
}
