//! clp's integration tests: one binary, one module per area, sharing the fixture helper
//! in `common` (a temporary HOME, the `clp` binary, path filters for snapshots).
//!
//! Tests that need a real component (Claude Code, bubblewrap, the conformance fixtures)
//! find it through `common::require`, which skips with a message when it is missing and
//! fails instead when `CLP_REQUIRE_ALL=1` (set by `.ci/run`).

mod backend;
mod boundary;
mod cli;
mod common;
mod concurrency;
mod container;
mod context;
mod corpus;
mod daily;
mod explain;
mod ide;
mod inputs;
mod level_a;
mod llama;
mod network;
mod persist;
mod profiles;
mod render;
mod sandbox;
mod secrets;
mod share;
