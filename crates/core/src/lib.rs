//! clp-core: the profile model, layered loading, validation and rendering behind `clp`.
//!
//! The data path is `files -> layers -> merged RawProfile -> resolve(Host) -> Profile ->
//! render -> LaunchPlan`. Everything up to the plan is pure given the [`Host`]; the only
//! modules that touch the machine are [`load`] (reads profile files), [`host`] (reads the
//! process environment), [`apply`] (writes a plan's files) and [`probe`] (asks the backend).
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod apply;
pub mod builtin;
pub mod container;
pub mod diag;
pub mod explain;
pub mod host;
pub mod load;
pub mod model;
pub mod probe;
pub mod render;
pub mod resolve;
pub mod sandbox;
pub mod schema;
pub mod validate;

pub use diag::{Diagnostic, Diagnostics};
pub use host::Host;
pub use load::{Catalog, LoadError, Loaded, Override, SearchPath};
pub use render::{LaunchPlan, RenderError};
pub use resolve::{resolve, Profile};
