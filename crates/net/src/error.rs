//! The crate's error type: one enum, each variant naming the path, address or step
//! that failed.

use std::io;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `network.allow` entry (or a pinned host) does not parse.
    #[error("`network.allow` is invalid: {0}")]
    AllowEntry(String),
    /// A test host map entry (`name=ip:port`) does not parse.
    #[error("test host map entry `{entry}` is invalid: {reason}")]
    TestHosts {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An operating system call on a named path or address failed.
    #[error("cannot {action} `{target}`")]
    Io {
        /// What was being done ("open", "bind", "write" ...).
        action: &'static str,
        /// The path or address it was done to.
        target: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A step of the network namespace setup failed.
    #[error("cannot set up the session's network namespace: {step}")]
    Namespace {
        /// The step, with what to check when it is an environment problem.
        step: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The helper reported an error over its control socket.
    #[error("the network namespace helper failed: {0}")]
    Helper(String),
    /// The helper's command line is malformed (a mismatch between clp and its re-exec).
    #[error("the network namespace helper's arguments are invalid: {0}")]
    HelperArgs(String),
    /// The helper's control socket carried something unexpected.
    #[error("the network namespace helper's control socket: {0}")]
    Protocol(String),
}

impl Error {
    pub(crate) fn io(action: &'static str, target: impl ToString, source: io::Error) -> Self {
        Error::Io {
            action,
            target: target.to_string(),
            source,
        }
    }
}
