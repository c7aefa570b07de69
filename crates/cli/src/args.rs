//! The command line, as clap derive types. No logic here.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `clp --version`: the crate version and the Claude Code version it was tested with.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (tested with Claude Code {})",
        env!("CARGO_PKG_VERSION"),
        clp_core::policy::TESTED_CLAUDE_VERSION
    )
});

/// The value name of every argument that names a profile: completions offer the
/// profile names there.
pub const PROFILE: &str = "PROFILE";

/// Launch Claude Code under declarative profiles
///
/// A profile (TOML) says how Claude Code runs: which login or backend, which model, and
/// inside which boundary: level A (an environment and a config dir of its own), B
/// (bubblewrap) or C (a Podman or Docker container). The built-in profiles are compiled
/// in; yours live in `~/.config/clp/profiles`. Run `clp` alone to see the profiles and
/// the next step.
#[derive(Debug, Parser)]
#[command(name = "clp", version = VERSION.as_str(), max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Resume a Claude Code session by its id, under the profile whose session store
    /// holds it (what Claude Code's "Resume this session with:" line prints)
    #[arg(long, value_name = "SESSION_ID")]
    pub resume: Option<String>,

    /// The command; without one, clp lists the profiles and the next step
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Search DIR for profiles before the user's profile dir
    #[arg(long, global = true, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,

    /// Override a profile key, e.g. `--set model.context=65536` (repeatable)
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start Claude Code under a profile
    Use(UseArgs),
    /// Run any command under a profile's environment and boundary
    Run(RunArgs),
    /// List the profiles
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show a resolved profile and where each value came from
    Show {
        /// Profile name
        #[arg(value_name = PROFILE)]
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Explain what decides auth, backend, model and permissions at launch, and what
    /// could still change it
    Explain {
        /// Profile name
        #[arg(value_name = PROFILE)]
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Resume a session by its id under the profile that holds it (from its directory)
    Resume {
        /// The session id Claude Code printed
        id: String,
        /// Further arguments for Claude Code (after `--`)
        #[arg(last = true, value_name = "CLAUDE_ARGS")]
        args: Vec<OsString>,
    },
    /// Validate profiles (names or files; all profiles when none given)
    Check {
        /// Profile names or paths to `.toml` files
        #[arg(value_name = PROFILE)]
        targets: Vec<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the profile JSON Schema
    Schema,
    /// Write a new profile into your profile dir, starting from a built-in
    Init {
        /// Name of the new profile (default: the template's name)
        name: Option<String>,
        /// Profile to start from
        #[arg(long, value_name = PROFILE, default_value = "local-glm")]
        from: String,
    },
    /// Write what a profile launches: settings.json, env and argv
    Render(RenderArgs),
    /// Check that a profile can launch on this machine
    Doctor {
        /// Profile name (all checks that need no profile when omitted)
        #[arg(value_name = PROFILE)]
        name: Option<String>,
        /// Print JSON (once every check is done)
        #[arg(long)]
        json: bool,
    },
    /// Print shell aliases for the profiles that declare one
    ShellInit {
        /// Shell syntax to print
        shell: ShellKind,
    },
    /// Show what a profile's network policy refused (or everything it decided)
    Log {
        /// Profile name
        #[arg(value_name = PROFILE)]
        name: String,
        /// Show allowed requests too, not only refusals
        #[arg(long)]
        all: bool,
        /// How many of the latest entries to show
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Print JSON lines, as logged
        #[arg(long)]
        json: bool,
    },
    /// Print a Containerfile for a container profile's image, and the build command
    Image {
        /// Profile name
        #[arg(value_name = PROFILE)]
        name: String,
    },
    /// Probe a backend health URL and print `ready`, `loading` or why not (used by
    /// `doctor` from inside the boundary)
    #[command(name = "__probe", hide = true)]
    Probe { url: String },
    /// Print shell completions (profile names included for bash, zsh and fish)
    Completions {
        /// Shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one per command into a directory
    Man {
        /// Write `clp.1` and `clp-COMMAND.1` into DIR instead of printing `clp.1`
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print the profile names, one a line, if the word after WORDS names a profile
    /// (used by the completion scripts); exit 1 when it does not
    #[command(name = "__complete-profiles", hide = true)]
    CompleteProfiles {
        /// The words of the command line before the one being completed, without `clp`
        #[arg(last = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct LaunchOpts {
    /// Print the plan (argv, env, files) instead of launching
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Skip the backend readiness probe
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Args)]
pub struct UseArgs {
    /// Profile name
    #[arg(value_name = PROFILE)]
    pub name: String,

    #[command(flatten)]
    pub opts: LaunchOpts,

    /// Arguments passed to Claude Code (after `--`)
    #[arg(last = true, value_name = "CLAUDE_ARGS")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Profile name
    #[arg(value_name = PROFILE)]
    pub name: String,

    #[command(flatten)]
    pub opts: LaunchOpts,

    /// The command and its arguments (after `--`)
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Profile name
    #[arg(value_name = PROFILE)]
    pub name: String,

    /// Output format on stdout
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Print JSON (the same as `--format json`)
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Write `settings.json`, `env` and `argv` into DIR instead of printing
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Replace machine- and user-specific parts with placeholders, for snapshot tests
    #[arg(long)]
    pub portable: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShellKind {
    Bash,
    Zsh,
    Fish,
}
