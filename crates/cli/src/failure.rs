//! How clp fails: an `error:` line, optional `hint:` lines, and an exit code (2 for
//! profile, usage and environment problems the user can fix; 1 for unexpected OS errors).

use std::fmt;

use clp_core::{Diagnostics, LoadError, RenderError};

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// Problems in profiles, each with its location.
    Profile(Diagnostics),
    /// Something the user can fix: a wrong name, a missing program, a backend that is down.
    User {
        message: String,
        hint: Option<String>,
    },
    /// The operating system refused something clp needed.
    Os(String),
}

impl Failure {
    pub fn user(message: impl Into<String>, hint: Option<String>) -> Failure {
        Failure::User {
            message: message.into(),
            hint,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Profile(_) | Failure::User { .. } => 2,
            Failure::Os(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Profile(diags) => {
                for (i, d) in diags.0.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "error: {d}")?;
                }
                Ok(())
            }
            Failure::User { message, hint } => {
                write!(f, "error: {message}")?;
                if let Some(h) = hint {
                    write!(f, "\n  hint: {h}")?;
                }
                Ok(())
            }
            Failure::Os(message) => write!(f, "error: {message}"),
        }
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::NotFound {
                name,
                suggestion,
                known,
            } => Failure::user(
                format!("no profile named `{name}`"),
                Some(match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("known profiles: {}", known.join(", ")),
                }),
            ),
            LoadError::Invalid(d) => Failure::Profile(d),
            LoadError::Io { path, source } => {
                Failure::Os(format!("cannot read `{}`: {source}", path.display()))
            }
        }
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::Profile(d)
    }
}

impl From<RenderError> for Failure {
    fn from(e: RenderError) -> Self {
        Failure::User {
            message: e.message,
            hint: e.hint,
        }
    }
}

impl From<clp_core::apply::WriteError> for Failure {
    fn from(e: clp_core::apply::WriteError) -> Self {
        Failure::Os(format!("{e}: {}", e.source))
    }
}
