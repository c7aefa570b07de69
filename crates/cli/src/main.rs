//! `clp`: parse the command line, load and resolve the profile with clp-core, then print,
//! write or exec. All profile logic lives in clp-core; this crate only talks to the user
//! and the operating system.

mod args;
mod cmd;
mod doctor;
mod failure;
mod launch;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::failure::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let g = &cli.global;
    match cli.command {
        Command::Use(args) => launch::use_profile(g, args),
        Command::Run(args) => launch::run_command(g, args),
        Command::Render(args) => launch::render(g, args),
        Command::List { json } => cmd::list(g, json),
        Command::Show { name, json } => cmd::show(g, &name, json),
        Command::Check { targets } => cmd::check(g, &targets),
        Command::Schema => cmd::schema(),
        Command::Init { name, from } => cmd::init(g, name.as_deref(), &from),
        Command::Doctor { name } => launch::doctor(g, name.as_deref()),
        Command::ShellInit { shell } => cmd::shell_init(g, shell),
        Command::Image { name } => cmd::image(g, &name),
        Command::Completions { shell } => cmd::completions(shell),
        Command::Probe { url } => {
            let state = match clp_core::probe::health(&url, std::time::Duration::from_secs(2)) {
                clp_core::probe::Health::Ready => "ready".to_owned(),
                clp_core::probe::Health::Loading => "loading".to_owned(),
                clp_core::probe::Health::Status(c) => format!("HTTP {c}"),
                clp_core::probe::Health::Unreachable(why) => why,
            };
            println!("{state}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
