//! `clp doctor [NAME]`: prints each of clp-core's checks as it is made (a spinner runs
//! between them on a terminal: some start the boundary), then the plan's notes; exit 2
//! when one is an error. `--json` prints them all at the end instead.

use std::process::ExitCode;

use clp_core::doctor::{self, Check, Status};
use clp_core::render::render_use;
use clp_core::{Error, Kind};

use crate::args::GlobalArgs;
use crate::context::Ctx;
use crate::failure::Failure;
use crate::term::{Progress, ERROR, HINT, OK, WARNING};

pub fn doctor(g: &GlobalArgs, name: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let profile = match name {
        Some(n) => Some(ctx.profile(n)?.1),
        None => None,
    };
    let clp = std::env::current_exe()
        .map_err(|e| Error::new(Kind::Os, "cannot find clp's own binary").caused_by(e))?;
    let inside = |p: &clp_core::Profile, argv: &[String]| inside(&ctx.host, &clp, p, argv);
    let mut progress = Progress::new();
    progress.spin("checking");
    let mut checks: Vec<Check> = Vec::new();
    let worst = doctor::run(&ctx.host, profile.as_ref(), &clp, &inside, &mut |check| {
        if !json {
            progress.above(|| print_check(check));
        }
        checks.push(check.clone());
    });
    progress.clear();
    let notes = profile
        .and_then(|p| render_use(&p, &ctx.host, &[]).ok())
        .map(|plan| plan.notes)
        .unwrap_or_default();
    if json {
        let report = serde_json::json!({ "status": worst, "checks": checks, "notes": notes });
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        for n in notes {
            println!("note     {n}");
        }
    }
    Ok(match worst {
        Status::Error => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}

fn print_check(check: &Check) {
    let (style, status) = match check.status {
        Status::Ok => (OK, "ok     "),
        Status::Warning => (WARNING, "warning"),
        Status::Error => (ERROR, "error  "),
    };
    anstream::println!("{style}{status}{style:#}  {}", check.what);
    if let Some(f) = &check.fix {
        anstream::println!("         {HINT}fix:{HINT:#} {f}");
    }
}

/// Runs `argv` inside `profile`'s boundary the way `clp run` would, capturing its output.
fn inside(
    host: &clp_core::Host,
    clp: &std::path::Path,
    profile: &clp_core::Profile,
    argv: &[String],
) -> Option<std::process::Output> {
    let plan = clp_core::render::render_run(profile, host, argv).ok()?;
    clp_core::preflight::check_programs(&plan, host).ok()?;
    let _applied = clp_core::apply::apply(&plan).ok()?;
    let (mut out, mut err) = (tempfile::tempfile().ok()?, tempfile::tempfile().ok()?);
    let files = Some((out.try_clone().ok()?, err.try_clone().ok()?));
    let outcome =
        clp_net::session::launch(&plan, host, Default::default(), clp.to_owned(), files).ok()?;
    let read = |f: &mut std::fs::File| -> Option<Vec<u8>> {
        use std::io::{Read, Seek};
        f.rewind().ok()?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).ok()?;
        Some(buf)
    };
    Some(std::process::Output {
        status: outcome.status,
        stdout: read(&mut out)?,
        stderr: read(&mut err)?,
    })
}
