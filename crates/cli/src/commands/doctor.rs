//! `clp doctor [NAME]`: prints each of clp-core's checks as it is made, then the plan's
//! notes; exit 2 when one is an error.

use std::process::ExitCode;

use clp_core::doctor::{self, Status};
use clp_core::render::render_use;
use clp_core::{Error, Kind};

use crate::args::GlobalArgs;
use crate::context::Ctx;
use crate::failure::Failure;

pub fn doctor(g: &GlobalArgs, name: Option<&str>) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let profile = match name {
        Some(n) => Some(ctx.profile(n)?.1),
        None => None,
    };
    let clp = std::env::current_exe()
        .map_err(|e| Error::new(Kind::Os, "cannot find clp's own binary").caused_by(e))?;
    let worst = doctor::run(&ctx.host, profile.as_ref(), &clp, &mut |check| {
        let status = match check.status {
            Status::Ok => "ok     ",
            Status::Warning => "warning",
            Status::Error => "error  ",
        };
        println!("{status}  {}", check.what);
        if let Some(f) = &check.fix {
            println!("         fix: {f}");
        }
    });
    if let Some(plan) = profile.and_then(|p| render_use(&p, &ctx.host, &[]).ok()) {
        for n in plan.notes {
            println!("note     {n}");
        }
    }
    Ok(match worst {
        Status::Error => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}
