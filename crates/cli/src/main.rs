//! `clp`: parse the command line, hand it to a command, print the failure. All profile
//! logic lives in clp-core; this crate only talks to the user and the operating system.

mod args;
mod commands;
mod complete;
mod context;
mod exec;
mod failure;
mod term;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::commands::{check, doctor, help, init, launch, list, render, show, small};

fn main() -> ExitCode {
    // Re-executed as the network namespace helper of a filtered session: first thing,
    // while clp is still single-threaded (a threaded process cannot make a user
    // namespace), and without parsing anything else.
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|a| a == clp_net::session::HELPER_ARG)
    {
        return ExitCode::from(clp_net::netns::helper_main(args).clamp(0, 255) as u8);
    }
    let cli = Cli::parse();
    let g = &cli.global;
    let command = match (cli.command, cli.resume) {
        (Some(_), Some(_)) => {
            let message = "`--resume` takes no subcommand (or use `clp resume ID`)";
            return finish(Err(clp_core::Error::usage(message).into()));
        }
        (Some(c), None) => c,
        (None, Some(id)) => Command::Resume {
            id,
            args: Vec::new(),
        },
        (None, None) => {
            quiet_on_closed_stdout();
            return finish(help::overview(g));
        }
    };
    if !starts_a_session(&command) {
        quiet_on_closed_stdout();
    }
    let result = match command {
        Command::Resume { id, args } => launch::resume(g, &id, args),
        Command::Use(args) => launch::use_profile(g, args),
        Command::Run(args) => launch::run_command(g, args),
        Command::Render(args) => render::render(g, args),
        Command::List { json } => list::list(g, json),
        Command::Show { name, json } => show::show(g, &name, json),
        Command::Explain { name, json } => show::explain(g, &name, json),
        Command::Check { targets, json } => check::check(g, &targets, json),
        Command::Schema => small::schema(),
        Command::Init { name, from } => init::init(g, name.as_deref(), &from),
        Command::Doctor { name, json } => doctor::doctor(g, name.as_deref(), json),
        Command::ShellInit { shell } => small::shell_init(g, shell),
        Command::Image { name } => small::image(g, &name),
        Command::Log {
            name,
            all,
            lines,
            json,
        } => small::log(g, &name, all, lines, json),
        Command::Completions { shell } => help::completions(shell),
        Command::Man { out } => help::man(out.as_deref()),
        Command::CompleteProfiles { words } => help::complete_profiles(&words),
        Command::Probe { url } => small::probe(&url),
    };
    finish(result)
}

/// Whether the command starts a session, during which clp stays the parent of the
/// boundary and serves its relays: there a write to a closed pipe must stay an error that
/// clp handles, never a signal that kills it before its after-session checks.
fn starts_a_session(command: &Command) -> bool {
    match command {
        Command::Use(args) => !args.opts.dry_run,
        Command::Run(args) => !args.opts.dry_run,
        Command::Resume { .. } => true,
        _ => false,
    }
}

/// A command that only prints ends quietly, as other Unix tools do, when the reader of
/// its output goes away (`clp render NAME --json | head`): SIGPIPE back to its default,
/// which Rust's runtime sets to ignore, turning each such write into a panic. (The
/// attribute that asks the runtime for it, `#[unix_sigpipe]`, is not stable.)
#[allow(unsafe_code)]
fn quiet_on_closed_stdout() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: no other thread runs yet, and the default action installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// The exit code, after printing the failure if there is one.
fn finish(result: Result<ExitCode, failure::Failure>) -> ExitCode {
    result.unwrap_or_else(|failure| {
        anstream::eprintln!("{failure}");
        ExitCode::from(failure.exit_code())
    })
}
