//! Links `clp` with packed relative relocations (DT_RELR) where the toolchain has them.
//!
//! clp is a position-independent executable with about 24,000 relative relocations, which
//! the dynamic loader applies at every start from a 580 KB table; packed, the table is
//! 7 KB: about a tenth of `clp --version`'s CPU time, on every launch (bench/run.sh and
//! BENCHMARKS.md). The binary stays a PIE, with its address randomized as before: only
//! the table's encoding changes. glibc reads it from 2.36 on (GNU ld 2.38 and later record
//! that as a version requirement); older GNU linkers ignore the option with a warning.

fn main() {
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
