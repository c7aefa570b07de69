//! What clp shows on a terminal beyond plain lines: colours and a spinner.
//!
//! Colours go through `anstream`, which drops them when the stream is not a terminal,
//! when `NO_COLOR` is set or when `TERM=dumb` (and keeps them with `CLICOLOR_FORCE`); no
//! meaning is carried by colour alone, every coloured word is there without it. The
//! spinner draws only when stderr is a terminal (and `TERM` is not `dumb`); otherwise a
//! wait is one plain line, written once, that ends with ` ready`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use clp_core::preflight::Event;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `error:`.
pub const ERROR: Style = AnsiColor::Red.on_default().bold();
/// `warning:`.
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
/// `hint:`, `fix:`.
pub const HINT: Style = AnsiColor::Cyan.on_default();
/// A check that passed.
pub const OK: Style = AnsiColor::Green.on_default();

/// Prints `warning: MESSAGE` (and `  hint: HINT`) on stderr, control characters escaped
/// (a warning may quote what a backend answered or a file said).
pub fn warn(message: &str, hint: Option<&str>) {
    let message = clp_core::diag::printable_lines(message);
    anstream::eprintln!("{WARNING}warning:{WARNING:#} {message}");
    if let Some(h) = hint {
        let h = clp_core::diag::printable_lines(h);
        anstream::eprintln!("  {HINT}hint:{HINT:#} {h}");
    }
}

/// Whether stderr shows a spinner: a terminal that can move its cursor.
fn live() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Progress on stderr for what can take a while: a spinner with the elapsed time on a
/// terminal, a single line otherwise. Finished (the spinner cleared, a pending line
/// ended) when dropped.
pub struct Progress {
    /// The spinner, on a terminal.
    bar: Option<ProgressBar>,
    /// What is being waited for or done now, and whether it is a step (shown as its own
    /// line when it ends) rather than a wait (which ends with ` ready` or nothing).
    shown: Option<(String, bool)>,
    live: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            bar: None,
            shown: None,
            live: live(),
        }
    }

    /// Shows a preflight event.
    pub fn event(&mut self, event: Event) {
        match event {
            Event::Waiting(what) => self.start(what, false),
            Event::Step(what) => self.start(what, true),
            Event::Done { ready } => self.finish(if ready { " ready" } else { "" }),
            Event::Warning { message, hint } => self.above(|| warn(&message, hint.as_deref())),
        }
    }

    /// Shows that `what` is going on until the next call; a repeat of the same `what`
    /// changes nothing.
    pub fn start(&mut self, what: String, step: bool) {
        if self.shown.as_ref().is_some_and(|(w, _)| *w == what) {
            return;
        }
        self.finish("");
        if self.live {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.set_message(what.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
        } else {
            let mut err = std::io::stderr();
            let _ = if step {
                writeln!(err, "{what}")
            } else {
                write!(err, "{what}")
            };
        }
        self.shown = Some((what, step));
    }

    /// Shows a spinner for `what` on a terminal, and nothing elsewhere: for waits whose
    /// outcome is printed anyway.
    pub fn spin(&mut self, what: &str) {
        if self.live {
            self.start(what.to_owned(), false);
        }
    }

    /// Removes the spinner without leaving a line.
    pub fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            stop(bar);
        }
        self.shown = None;
    }

    /// Ends what is shown, a wait with `suffix` after it.
    pub fn finish(&mut self, suffix: &str) {
        let Some((what, step)) = self.shown.take() else {
            return;
        };
        if let Some(bar) = self.bar.take() {
            stop(bar);
            eprintln!("{what}{}", if step { "" } else { suffix });
        } else if !step {
            eprintln!("{suffix}");
        }
    }

    /// Prints with `print` above the spinner (or between lines, without one).
    pub fn above(&mut self, print: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => {
                if self.shown.as_ref().is_some_and(|(_, step)| !step) {
                    eprintln!();
                    self.shown = None;
                }
                print();
            }
        }
    }
}

/// Clears the spinner and joins its thread: clp may exec, or make a user namespace (which
/// a threaded process cannot), right after.
fn stop(bar: ProgressBar) {
    bar.disable_steady_tick();
    bar.finish_and_clear();
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish("");
    }
}
