//! Finding the real parts a test needs, and waiting on them: shared by this crate's tests
//! and clp's. A missing part skips the test (`SKIPPED: ...`), or fails it under
//! `CLP_REQUIRE_ALL=1`, as in CI.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `found`, or a skip (a failure under `CLP_REQUIRE_ALL=1`) that names `what`.
pub fn require<T>(what: &str, found: Option<T>) -> Option<T> {
    if found.is_none() {
        if std::env::var("CLP_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("{what} is required (CLP_REQUIRE_ALL=1) but missing");
        }
        eprintln!("SKIPPED: {what} is missing");
    }
    found
}

/// Where a program is on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The real Claude Code binary: `$CLP_TEST_CLAUDE`, the CI cache, or `claude` on PATH.
pub fn claude() -> Option<PathBuf> {
    let found = std::env::var_os("CLP_TEST_CLAUDE")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let p = Path::new(&home).join(".cache/clp-ci/claude-code/node_modules/.bin/claude");
            p.exists().then_some(p)
        })
        .or_else(|| which("claude"));
    require("Claude Code (npm @anthropic-ai/claude-code)", found)
}

/// Polls `f` every `every` until it gives a value, or gives up after `wait` (a hang
/// guard, not a timing the test depends on).
pub fn poll<T>(wait: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}
