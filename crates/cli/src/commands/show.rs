//! `clp show NAME`: every resolved value and where it came from, and what this machine
//! would make of it (the plan's notes, or why it cannot launch here). `clp explain NAME`:
//! which source wins for what decides the launch, and what could still change it.

use std::process::ExitCode;

use clp_core::explain::{show_json, show_text};
use clp_core::precedence;
use clp_core::render::render_use;

use crate::args::GlobalArgs;
use crate::context::Ctx;
use crate::failure::Failure;

pub fn show(g: &GlobalArgs, name: &str, json: bool) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (loaded, profile) = ctx.profile(name)?;
    let plan = render_use(&profile, &ctx.host, &[]);
    if json {
        let value = show_json(&profile, &loaded, &plan);
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
    } else {
        print!("{}", show_text(&profile, &loaded, &plan));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn explain(g: &GlobalArgs, name: &str, json: bool) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (loaded, profile) = ctx.profile(name)?;
    let plan = render_use(&profile, &ctx.host, &[])?;
    let layers = precedence::read_layers(&profile);
    let e = precedence::explain(&profile, &loaded, &plan, &ctx.host, &layers);
    if json {
        println!("{}", serde_json::to_string_pretty(&e).expect("JSON"));
    } else {
        print!("{}", precedence::text(&e));
    }
    Ok(ExitCode::SUCCESS)
}
