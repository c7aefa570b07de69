//! Measures the helper's setup: from spawning it to holding the listeners it bound
//! inside the new namespace (the start-up clp adds in allowlist mode), against a plain
//! spawn of the same command as the baseline. The example re-executes itself as the
//! helper, as clp does.
//!
//! `cargo run --release -p clp-net --example setup_time [RUNS]`

use std::ffi::OsString;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clp_net::netns::{helper_main, NetnsSession};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    if first.as_deref() == Some("helper".as_ref()) {
        return ExitCode::from(helper_main(args).clamp(0, 255) as u8);
    }
    let runs: usize = first.and_then(|a| a.to_str()?.parse().ok()).unwrap_or(50);
    let argv: Vec<OsString> = vec!["true".into()];
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("setup_time: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut setup = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut helper = Command::new(&exe);
        helper.arg("helper");
        let mut session = match NetnsSession::spawn(helper, &[8080, 3128], &argv) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("setup_time: {e}");
                return ExitCode::FAILURE;
            }
        };
        setup.push(start.elapsed());
        let _ = session.helper.wait();

        let start = Instant::now();
        match Command::new("true").spawn() {
            Ok(mut child) => {
                baseline.push(start.elapsed());
                let _ = child.wait();
            }
            Err(e) => {
                eprintln!("setup_time: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let user = if nix::unistd::geteuid().is_root() {
        "root (netns only)"
    } else {
        "normal user (userns + netns)"
    };
    println!("as {user}, {runs} runs, 2 listeners each:");
    report("spawn helper -> listeners received", &mut setup);
    report("baseline: spawn `true`", &mut baseline);
    ExitCode::SUCCESS
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "  {what}: min {:.0} us, median {:.0} us, p90 {:.0} us, max {:.0} us",
        us(samples[0]),
        us(at(0.5)),
        us(at(0.9)),
        us(samples[samples.len() - 1])
    );
}
