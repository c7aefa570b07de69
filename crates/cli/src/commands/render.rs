//! `clp render`: the plan as files (`--out`), text or JSON, optionally portable (rendered
//! as an ordinary user would, so root in a dotfiles repository's CI gets the user's render).

use std::process::ExitCode;

use clp_core::render::render_use;
use clp_core::report::{plan_text, portable, portable_host, render_files};

use crate::args::{Format, GlobalArgs, RenderArgs};
use crate::context::Ctx;
use crate::failure::Failure;

pub fn render(g: &GlobalArgs, args: RenderArgs) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    if args.portable {
        ctx.host = portable_host(&ctx.host);
    }
    let (_, profile) = ctx.profile(&args.name)?;
    let mut plan = render_use(&profile, &ctx.host, &[])?;
    if args.portable {
        plan = portable(&plan, &ctx.host);
    }
    if let Some(dir) = &args.out {
        for (name, contents) in render_files(&plan) {
            let path = dir.join(&name);
            clp_core::apply::write_atomic(&path, contents.as_bytes(), 0o644)?;
            println!("{}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    match (args.json, args.format) {
        (false, Format::Text) => print!("{}", plan_text(&plan)),
        (true, _) | (_, Format::Json) => println!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("a plan serializes")
        ),
    }
    Ok(ExitCode::SUCCESS)
}
