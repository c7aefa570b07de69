//! The commands about clp itself: `clp` alone (the profiles and the next step), `man`,
//! `completions`, and the hidden `__complete-profiles` that the completions call.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clp_core::listing;

use crate::args::{Cli, GlobalArgs};
use crate::complete;
use crate::context::Ctx;
use crate::failure::Failure;

/// `clp` with no command: the profiles, short, and what to run next.
pub fn overview(g: &GlobalArgs) -> Result<ExitCode, Failure> {
    let ctx = Ctx::new(g)?;
    let (rows, problems) = listing::rows(&ctx.catalog);
    print!("{}", listing::overview(&rows));
    if !problems.is_empty() {
        crate::term::warn(
            &format!("{} profile file(s) could not be read", problems.len()),
            Some("`clp check` shows why"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `clp man`: `clp.1` on stdout, or with `--out DIR` one page per command in DIR.
pub fn man(out: Option<&Path>) -> Result<ExitCode, Failure> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = out else {
        print!("{}", page(&cmd));
        return Ok(ExitCode::SUCCESS);
    };
    let mut pages = vec![cmd.clone()];
    pages.extend(cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    fs_err::create_dir_all(dir).map_err(|e| clp_core::Error::io("cannot create", dir, e))?;
    for c in pages {
        let man = clap_mangen::Man::new(c.clone());
        let path = dir.join(man.get_filename());
        clp_core::apply::write_atomic(&path, page(&c).as_bytes(), 0o644)?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// What `clp.1` says after the commands: where clp looks, what it reads from the
/// environment, its exit codes.
const MORE: &[(&str, &[(&str, &str)])] = &[
    (
        "ENVIRONMENT",
        &[
            (
                "CLP_PROFILES_DIR",
                "Your profile dir; default $XDG_CONFIG_HOME/clp/profiles, else \
                 ~/.config/clp/profiles",
            ),
            (
                "XDG_STATE_HOME",
                "clp's state (each profile's settings.json, config dir and home) is in \
                 $XDG_STATE_HOME/clp, else ~/.local/state/clp",
            ),
            (
                "NO_COLOR",
                "No colours (clp colours nothing either when the output is not a terminal); \
                 CLICOLOR_FORCE=1 forces them",
            ),
        ],
    ),
    (
        "FILES",
        &[
            (
                "~/.config/clp/profiles/NAME.toml",
                "Your profiles; one named like a built-in replaces it (`clp init` writes one)",
            ),
            (
                "~/.local/state/clp/NAME/",
                "What clp writes for profile NAME; the normal ~/.claude is never written \
                 by a profile other than oauth",
            ),
        ],
    ),
    (
        "EXIT STATUS",
        &[
            (
                "use, run, resume",
                "The exit status of Claude Code or of the command",
            ),
            (
                "2",
                "A profile or usage error, a missing program, a backend that is down; \
                 `check` and `doctor` when they find an error",
            ),
            ("1", "An unexpected operating system error"),
        ],
    ),
];

/// One command's man page in roff; `clp.1` gets [`MORE`] too.
fn page(cmd: &clap::Command) -> String {
    use clap_mangen::roff::{bold, roman, Roff};
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("clp {}", env!("CARGO_PKG_VERSION")))
        .manual("clp manual");
    let mut buf = Vec::new();
    let io = |r: std::io::Result<()>| r.expect("writing to memory");
    if cmd.get_name() != "clp" {
        io(man.render(&mut buf));
        return String::from_utf8(buf).expect("roff is UTF-8");
    }
    io(man.render_title(&mut buf));
    io(man.render_name_section(&mut buf));
    io(man.render_synopsis_section(&mut buf));
    io(man.render_description_section(&mut buf));
    io(man.render_options_section(&mut buf));
    io(man.render_subcommands_section(&mut buf));
    let mut more = Roff::new();
    for (section, items) in MORE {
        more.control("SH", [*section]);
        for (term, text) in *items {
            more.control("TP", [])
                .text([bold(*term)])
                .text([roman(*text)]);
        }
    }
    io(more.to_writer(&mut buf));
    io(man.render_version_section(&mut buf));
    String::from_utf8(buf).expect("roff is UTF-8")
}

/// The shell code, after clap_complete's script, that completes profile names: it asks
/// `clp __complete-profiles` and falls back to clap's completion when that says no.
/// Elvish and PowerShell get clap's script alone.
fn dynamic(shell: clap_complete::Shell) -> &'static str {
    use clap_complete::Shell;
    match shell {
        Shell::Bash => {
            r#"
# Profile names, from `clp __complete-profiles`; everything else from _clp above.
_clp_profiles() {
    local cur="${COMP_WORDS[COMP_CWORD]}" names
    if [[ "$cur" != -* ]] &&
        names=$(clp __complete-profiles -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null); then
        COMPREPLY=($(compgen -W "$names" -- "$cur"))
        return 0
    fi
    _clp "$@"
}
complete -F _clp_profiles -o bashdefault -o default clp
"#
        }
        Shell::Zsh => {
            r#"
# Profile names, from `clp __complete-profiles`; everything else from _clp above.
_clp_profiles() {
    local names
    if [[ "$PREFIX" != -* ]] &&
        names=$(clp __complete-profiles -- "${(@)words[2,CURRENT-1]}" 2>/dev/null); then
        compadd -- ${(f)names}
        return
    fi
    _clp "$@"
}
compdef _clp_profiles clp
"#
        }
        Shell::Fish => {
            r#"
# Profile names, from `clp __complete-profiles`.
complete -c clp -a '(clp __complete-profiles -- (commandline -opc)[2..-1] 2>/dev/null)'
"#
        }
        _ => "",
    }
}

/// `clp completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, Failure> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "clp", &mut out);
    out.extend_from_slice(dynamic(shell).as_bytes());
    use std::io::Write;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| clp_core::Error::new(clp_core::Kind::Os, "cannot write").caused_by(e))?;
    Ok(ExitCode::SUCCESS)
}

/// `clp __complete-profiles -- WORDS`: the profile names, one a line, when the word after
/// WORDS names a profile; exit 1 (nothing printed) when it does not.
pub fn complete_profiles(words: &[String]) -> Result<ExitCode, Failure> {
    let at = complete::position(&Cli::command(), words);
    if !at.profile {
        return Ok(ExitCode::FAILURE);
    }
    let g = GlobalArgs {
        profiles_dir: at.profiles_dir,
        set: Vec::new(),
    };
    let ctx = Ctx::new(&g)?;
    for row in listing::rows(&ctx.catalog).0 {
        println!("{}", row.name);
    }
    Ok(ExitCode::SUCCESS)
}
