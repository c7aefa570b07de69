//! `clp list`: the profiles as a table or JSON; unreadable or invalid files are listed
//! and pointed out, never a reason to fail.

use std::process::ExitCode;

use clp_core::listing;

use crate::args::GlobalArgs;
use crate::context::Ctx;
use crate::failure::Failure;

pub fn list(g: &GlobalArgs, json: bool) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    let (rows, problems) = listing::rows(&ctx.catalog);
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("JSON"));
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", listing::table(&rows));
    for p in &problems {
        crate::term::warn(&p.to_string(), None);
    }
    if rows.iter().any(|r| !r.valid) || !problems.is_empty() {
        eprintln!("some profiles are invalid: `clp check` shows why");
    }
    Ok(ExitCode::SUCCESS)
}
