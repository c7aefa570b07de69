//! `clp check [NAME|FILE...]`: every problem of every profile asked for (all when none),
//! located; exit 2 when there is one. `--json` prints the verdicts instead.

use std::process::ExitCode;

use clp_core::{listing, Diagnostics};

use crate::args::GlobalArgs;
use crate::context::Ctx;
use crate::failure::Failure;

pub fn check(g: &GlobalArgs, targets: &[String], json: bool) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    let checked = listing::check(&ctx.catalog, targets, &ctx.overrides, &ctx.host)?;
    let failed = checked.iter().any(|c| !c.problems.is_empty());
    if json {
        println!("{}", serde_json::to_string_pretty(&checked).expect("JSON"));
        return Ok(if failed {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    let mut problems = Diagnostics::default();
    let mut ok = 0;
    for c in checked {
        let label = if c.label.is_empty() {
            String::new()
        } else {
            format!("  ({})", c.label)
        };
        if c.problems.is_empty() {
            ok += 1;
            println!("ok       {}{label}", c.name);
        } else {
            println!("invalid  {}{label}", c.name);
            problems.0.extend(c.problems.0);
        }
    }
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    problems.0.dedup();
    let count = problems.0.len();
    anstream::eprintln!("{}", Failure::Profile(problems));
    let s = |n: usize| if n == 1 { "" } else { "s" };
    eprintln!(
        "{count} problem{} found; {ok} profile{} valid",
        s(count),
        s(ok)
    );
    Ok(ExitCode::from(2))
}
