#!/usr/bin/env bash
# The project's test command: the gate (format, lints, docs), every test, and the
# stale-snapshot check. Tests that need a real component (Claude Code, bubblewrap, socat,
# a normal user, podman) use it when installed and say SKIPPED otherwise; `.ci/run`
# installs them all and sets CLP_REQUIRE_ALL=1, which turns every skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# The crates are publishable: everything they embed lives inside them.
cargo package --workspace --allow-dirty --quiet

if command -v cargo-insta >/dev/null 2>&1; then
  # --check: a changed snapshot fails; --unreferenced=reject: so does a stale one.
  cargo insta test --workspace --check --unreferenced=reject
elif [ "${CLP_REQUIRE_ALL:-}" = 1 ]; then
  echo "cargo-insta is required for the stale-snapshot check (cargo install cargo-insta)" >&2
  exit 1
else
  echo "note: cargo-insta not installed; running cargo test without the stale-snapshot check"
  cargo test --workspace
fi
