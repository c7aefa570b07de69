//! The commands that only print: `schema`, `shell-init`, `image`, `log`, and the hidden
//! `__probe` that `doctor` runs inside a boundary.

use std::process::ExitCode;
use std::time::Duration;

use clp_core::listing::{self, Shell};
use clp_core::policy::Tool;
use clp_core::probe::{self, Health};
use clp_core::{network, Error};

use crate::args::{GlobalArgs, ShellKind};
use crate::context::Ctx;
use crate::failure::Failure;

pub fn schema() -> Result<ExitCode, Failure> {
    print!("{}", clp_core::schema::profile_schema_text());
    Ok(ExitCode::SUCCESS)
}

pub fn shell_init(g: &GlobalArgs, shell: ShellKind) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    let shell = match shell {
        ShellKind::Bash => Shell::Bash,
        ShellKind::Zsh => Shell::Zsh,
        ShellKind::Fish => Shell::Fish,
    };
    for line in listing::shell_aliases(&listing::rows(&ctx.catalog).0, shell) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn image(g: &GlobalArgs, name: &str) -> Result<ExitCode, Failure> {
    let mut ctx = Ctx::new(g)?;
    let (_, profile) = ctx.profile(name)?;
    let engine = clp_core::level::container::engine(&profile, &ctx.host);
    print!("{}", clp_core::level::container::containerfile(&profile));
    eprintln!(
        "build it with:\n  clp image {name} | {} build -t {} -f - .",
        Tool::engine(engine).program(),
        profile.container.image
    );
    Ok(ExitCode::SUCCESS)
}

pub fn log(
    g: &GlobalArgs,
    name: &str,
    all: bool,
    lines: usize,
    json: bool,
) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    let path = network::log_path(&ctx.host, name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "no network decisions logged for `{name}` yet (`{}`)",
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(Error::io("cannot read", &path, e).into()),
    };
    for r in network::records(&text, all, lines) {
        if json {
            println!("{}", serde_json::to_string(&r).expect("JSON"));
        } else {
            println!("{}", network::record_line(&r));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn probe(url: &str) -> Result<ExitCode, Failure> {
    let state = match probe::health(url, Duration::from_secs(2)) {
        Health::Ready => "ready".to_owned(),
        Health::Loading => "loading".to_owned(),
        Health::Status(c) => format!("HTTP {c}"),
        Health::Unreachable(why) => why,
    };
    println!("{state}");
    Ok(ExitCode::SUCCESS)
}
