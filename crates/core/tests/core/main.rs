//! clp-core's integration tests: one binary. Pure tests only (no processes, no network):
//! the committed schema, the shipped profiles, renders with a fixed `Host`, and Claude
//! Code's settings schema as the outside referee.

mod conformance;
mod layers;
mod props;
mod render;
mod schema;

use clp_core::{resolve, Catalog, Host, Override, Profile, SearchPath};

/// Loads and resolves a built-in profile against `host`, with `--set` overrides.
pub fn builtin(name: &str, host: &Host, sets: &[&str]) -> Profile {
    let catalog = Catalog::new(SearchPath::default());
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    let loaded = catalog.load(name, &overrides).unwrap();
    resolve(&loaded, host).unwrap()
}

/// The names of the shipped profiles.
pub fn builtin_names() -> Vec<&'static str> {
    clp_core::builtin::BUILTINS.iter().map(|b| b.0).collect()
}
