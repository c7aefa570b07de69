//! Dynamic completion of profile names. clap_complete's scripts complete commands and
//! options; the few lines `clp completions` adds after them ask the hidden
//! `clp __complete-profiles -- WORDS` whether the word being completed names a profile,
//! and if so for the names. Which arguments name a profile is read from clap's own model
//! of the command line (their value name is [`PROFILE`]), so a new command with a
//! profile argument completes without touching the scripts.
//!
//! clap_complete's own dynamic engine (`CompleteEnv`) would do this too, but it is behind
//! its `unstable-dynamic` feature, whose interface may change in any release.

use std::path::PathBuf;

use clap::{Arg, Command};

use crate::args::PROFILE;

/// Where the word after `words` (the command line without `clp`, up to the word being
/// completed) stands.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Whether it names a profile.
    pub profile: bool,
    /// The `--profiles-dir` given among `words`.
    pub profiles_dir: Option<PathBuf>,
}

/// Reads `words` the way clap would parse them, far enough to tell what comes next.
pub fn position(cmd: &Command, words: &[String]) -> Position {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut at = &cmd;
    let mut positionals = 0;
    let mut pending: Option<&Arg> = None;
    let mut rest = false;
    let mut found = Position::default();
    for word in words {
        // bash splits `--profiles-dir=DIR` into three words at the `=`.
        if pending.is_some() && word == "=" {
            continue;
        }
        if let Some(arg) = pending.take() {
            note(arg, word, &mut found);
            continue;
        }
        if rest || word == "-" || !word.starts_with('-') {
            if !rest && positionals == 0 {
                if let Some(sub) = at.find_subcommand(word) {
                    at = sub;
                    continue;
                }
            }
            positionals += 1;
        } else if word == "--" {
            rest = true;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let arg = at.get_arguments().find(|a| a.get_long() == Some(name));
            match (arg, value) {
                (Some(a), Some(v)) => note(a, v, &mut found),
                (Some(a), None) if takes_value(a) => pending = Some(a),
                _ => {}
            }
        } else {
            // Short options, possibly bundled (`-nx`); one taking a value ends the bundle.
            let shorts: Vec<char> = word[1..].chars().collect();
            for (i, c) in shorts.iter().enumerate() {
                let Some(arg) = at.get_arguments().find(|a| a.get_short() == Some(*c)) else {
                    continue;
                };
                if takes_value(arg) {
                    let value: String = shorts[i + 1..].iter().collect();
                    if value.is_empty() {
                        pending = Some(arg);
                    } else {
                        note(arg, &value, &mut found);
                    }
                    break;
                }
            }
        }
    }
    found.profile = match pending {
        Some(arg) => names_profile(arg),
        None if rest => false,
        None => nth_positional(at, positionals).is_some_and(names_profile),
    };
    found
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

fn names_profile(arg: &Arg) -> bool {
    arg.get_value_names()
        .is_some_and(|names| names.iter().any(|n| n == PROFILE))
}

/// Remembers the value of `--profiles-dir`.
fn note(arg: &Arg, value: &str, found: &mut Position) {
    if arg.get_id() == "profiles_dir" {
        found.profiles_dir = Some(PathBuf::from(value));
    }
}

/// The positional argument that the `n`th positional word (from 0) fills: a list takes
/// every word from its place on.
fn nth_positional(cmd: &Command, n: usize) -> Option<&Arg> {
    cmd.get_positionals().enumerate().find_map(|(i, arg)| {
        let many = arg.get_num_args().is_some_and(|r| r.max_values() > 1);
        (i == n || (many && i <= n)).then_some(arg)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::args::Cli;

    fn at(line: &str) -> Position {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        position(&Cli::command(), &words)
    }

    #[test]
    fn profile_positions() {
        for line in [
            "use",
            "use -n --no-check",
            "run",
            "show",
            "explain",
            "render",
            "render --format json",
            "doctor",
            "log -n 5",
            "image",
            "check",
            "check local-glm",
            "init mine --from",
            "--set a=b use",
            "--profiles-dir /p use",
        ] {
            assert!(at(line).profile, "`clp {line} _` names a profile");
        }
        for line in [
            "",
            "list",
            "use local-glm",
            "use local-glm --",
            "run local-glm -- sh",
            "render --format",
            "render local-glm --out",
            "init",
            "--profiles-dir",
            "log -n",
            "completions",
            "schema",
            "shell-init",
        ] {
            assert!(!at(line).profile, "`clp {line} _` does not name a profile");
        }
    }

    #[test]
    fn the_profiles_dir_is_read_in_every_spelling() {
        for line in [
            "--profiles-dir /p use",
            "--profiles-dir=/p use",
            "--profiles-dir = /p use",
            "use --profiles-dir /p",
        ] {
            assert_eq!(at(line).profiles_dir, Some(PathBuf::from("/p")), "{line}");
        }
    }
}
