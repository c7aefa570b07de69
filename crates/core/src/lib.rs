//! clp-core: the profile model, layered loading, validation and rendering behind `clp`.
//!
//! The data path reads from the module names, each importing only modules above it in
//! this list:
//!
//! ```text
//! source  -> layer  -> merge  -> profile  -> render (settings, boundary, level) -> plan
//! (files)    (check)   (extends,  (resolve     (pure)                              (data)
//!                       --set)     with Host)
//! ```
//!
//! then `apply` (write the plan's files), `preflight` (the backend), `secret` and the
//! CLI's exec. Everything up to the plan is pure given the [`Host`]; the modules that touch
//! the machine are named for it: [`source`] reads profile files, [`host::detect`] reads the
//! process environment, [`apply`] writes, [`probe`] and [`preflight`] ask the backend,
//! [`secret`] runs credential commands, [`doctor`] runs checks.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod apply;
pub mod boundary;
pub mod builtin;
pub mod context;
pub mod diag;
pub mod doctor;
pub mod error;
pub mod explain;
pub mod fsafe;
pub mod host;
pub mod init;
pub mod keypath;
pub mod layer;
pub mod level;
pub mod listing;
pub mod merge;
pub mod model;
pub mod net;
pub mod network;
pub mod plan;
pub mod policy;
pub mod precedence;
pub mod preflight;
pub mod probe;
pub mod profile;
pub mod render;
pub mod report;
pub mod resume;
pub mod rules;
pub mod schema;
pub mod seccomp;
pub mod secret;
pub mod session;
pub mod settings;
pub mod source;
pub mod watch;

pub use diag::{Diagnostic, Diagnostics};
pub use error::{Error, Kind, LoadError};
pub use host::Host;
pub use merge::{Loaded, Override};
pub use plan::LaunchPlan;
pub use profile::{resolve, Profile};
pub use source::{Catalog, SearchPath};
