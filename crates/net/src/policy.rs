//! The allowlist the proxy enforces: clp-core's host patterns, so that an entry means the
//! same thing in `clp check`, in Claude Code's settings and here.

pub use clp_core::net::{Allowlist, Host, HostPattern, DEFAULT_PORTS};
