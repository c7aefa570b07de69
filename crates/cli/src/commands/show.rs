//! `clp show NAME`: every resolved value and where it came from, and what this machine
//! would make of it (the plan's notes, or why it cannot launch here).

use std::process::ExitCode;

use clp_core::explain::{show_json, show_text};
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
