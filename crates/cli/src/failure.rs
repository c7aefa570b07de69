//! How clp fails: an `error:` line, `hint:` lines, the cause, and an exit code. The one
//! place where an error's kind becomes an exit code: 2 for everything the user can fix
//! (profiles, usage, a missing program, a backend that is down), 1 for unexpected OS
//! errors.

use std::fmt;

use clp_core::diag::printable_lines;
use clp_core::init::InitError;
use clp_core::{Diagnostics, Error, Kind, LoadError};

use crate::term::{ERROR, HINT};

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// Problems in profiles, each with its location.
    Profile(Diagnostics),
    /// An error from clp-core.
    Core(Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Profile(_) => 2,
            Failure::Core(e) => match e.kind {
                Kind::Profile | Kind::Usage | Kind::Host => 2,
                Kind::Os => 1,
            },
        }
    }
}

/// `error:` lines, styled: print it through `anstream`, which drops the styles where
/// they do not belong.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Profile(diags) => {
                for (i, d) in diags.0.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{ERROR}error:{ERROR:#} {d}")?;
                }
                Ok(())
            }
            // What an error quotes may come from a path a session planted or a hostile
            // file: control characters escaped, line by line.
            Failure::Core(e) => {
                write!(f, "{ERROR}error:{ERROR:#} {}", printable_lines(&e.message))?;
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    write!(f, "\n  cause: {}", printable_lines(&c.to_string()))?;
                    cause = c.source();
                }
                for h in &e.hints {
                    write!(f, "\n  {HINT}hint:{HINT:#} {}", printable_lines(h))?;
                }
                Ok(())
            }
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::Profile(d)
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Self {
        match e.into_diagnostics() {
            Ok(d) => Failure::Profile(d),
            Err(LoadError::NotFound {
                name,
                suggestion,
                known,
            }) => Failure::Core(Error::usage(format!("no profile named `{name}`")).hint(
                match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("known profiles: {}", known.join(", ")),
                },
            )),
            Err(other) => Failure::Core(Error::new(Kind::Os, other.to_string())),
        }
    }
}

impl From<InitError> for Failure {
    fn from(e: InitError) -> Self {
        match e {
            InitError::Usage(e) => e.into(),
            InitError::Load(e) => e.into(),
        }
    }
}
