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
# The crates are publishable: everything they embed lives inside them. Cargo verifies
# each crate against the others' packaged copies, which it treats as immutable registry
# crates: extracted once per version (`$CARGO_HOME/registry/src/-<hash>/`) and compiled
# once (a unit whose sources are there), then reused after the source changed. Drop both
# for clp's own crates, so that a stale copy cannot fail (or pass) the check.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/clp-*
for dep in target/debug/deps/clp_*-*.d; do
  grep -q '/registry/src/-' "$dep" 2>/dev/null || continue
  unit=$(basename "$dep" .d)
  rm -rf "target/debug/.fingerprint/${unit//_/-}"
done
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
