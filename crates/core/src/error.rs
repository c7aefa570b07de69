//! Errors: what went wrong, of which kind, with the cause kept and the hints that fix it.
//!
//! The kind decides the exit code, in one place in the CLI: everything a user can fix
//! (a profile, a command line, a missing program, a backend that is down) exits with 2;
//! an operating-system failure nobody expected exits with 1.

use std::fmt;
use std::path::PathBuf;

use crate::diag::{Diagnostic, Diagnostics};

/// Which kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A profile is wrong (with a location when there is one).
    Profile,
    /// The command line is wrong.
    Usage,
    /// The machine lacks something the user can provide: a program, a user, a backend.
    Host,
    /// The operating system refused something unexpectedly.
    Os,
}

/// A failure with its kind, its cause and hints.
#[derive(Debug)]
pub struct Error {
    /// Which kind.
    pub kind: Kind,
    /// What went wrong, one line, no trailing period.
    pub message: String,
    /// How to fix it, one line each.
    pub hints: Vec<String>,
    /// The underlying error, when there is one.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A failure of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            hints: Vec::new(),
            source: None,
        }
    }

    /// A profile problem.
    pub fn profile(message: impl Into<String>) -> Error {
        Error::new(Kind::Profile, message)
    }

    /// Something the machine lacks.
    pub fn host(message: impl Into<String>) -> Error {
        Error::new(Kind::Host, message)
    }

    /// A command-line problem.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(Kind::Usage, message)
    }

    /// An I/O failure on `path`: `message` says what clp was doing.
    pub fn io(message: impl Into<String>, path: impl Into<PathBuf>, e: std::io::Error) -> Error {
        let path = path.into();
        Error::new(
            Kind::Os,
            format!("{}: `{}`", message.into(), path.display()),
        )
        .caused_by(e)
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hints.push(hint.into());
        self
    }

    /// Keeps the cause.
    pub fn caused_by(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(e));
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No profile of that name anywhere.
    #[error("no profile named `{name}`")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The closest known name.
        suggestion: Option<String>,
        /// Every known name.
        known: Vec<String>,
    },
    /// One or more profiles are invalid.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// A profile file could not be read (unreadable, not UTF-8, not a regular file).
    #[error("cannot read `{}`", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

impl LoadError {
    /// The problem as located diagnostics (`Io` becomes one at the file).
    pub fn into_diagnostics(self) -> Result<Diagnostics, LoadError> {
        match self {
            LoadError::Invalid(d) => Ok(d),
            LoadError::Io { path, source } => Ok(Diagnostics(vec![Diagnostic {
                origin: path.display().to_string(),
                ..Diagnostic::new("", format!("cannot read the file: {source}"))
            }])),
            other => Err(other),
        }
    }
}

impl From<Diagnostics> for LoadError {
    fn from(d: Diagnostics) -> Self {
        LoadError::Invalid(d)
    }
}
