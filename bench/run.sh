#!/usr/bin/env bash
# Launch-path benchmarks: how long clp adds before Claude Code starts. Writes
# bench/results.md. Needs hyperfine (apt-get install hyperfine) and bubblewrap; builds clp
# in release mode. Run on an idle machine; the numbers are wall-clock times.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p clp -p clp-test-backend
clp="$PWD/target/release/clp"
work=$(mktemp -d)
trap 'kill "$backend_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/home/project"
./target/release/clp-test-backend --port 0 > "$work/backend.out" &
backend_pid=$!
for _ in $(seq 50); do grep -q listening "$work/backend.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/backend.out")
export HOME="$work/home"
cd "$HOME/project"
user_set=()
[ "$(id -u)" = 0 ] && id clptest >/dev/null 2>&1 && chown clptest: "$HOME/project" && user_set=(--set isolation.user=clptest)

out="$OLDPWD/bench/results.md"
hyperfine -N --warmup 3 --min-runs 20 --export-markdown "$work/table.md" \
  -n 'true (baseline)' '/bin/true' \
  -n 'clp render local-glm' "$clp render local-glm ${user_set[*]}" \
  -n 'clp use local-env --dry-run' "$clp use local-env --dry-run" \
  -n 'clp run local-env -- true (A, with backend probe)' "$clp --set backend.url=$url run local-env -- true" \
  -n 'clp run local-env --no-check -- true (A)' "$clp run local-env --no-check -- true" \
  -n 'bwrap --ro-bind / / true (bare bubblewrap)' 'bwrap --ro-bind / / --unshare-all --share-net --proc /proc --dev /dev true' \
  -n 'clp run local-glm --no-check -- true (B)' "$clp ${user_set[*]} run local-glm --no-check -- true" \
  >/dev/null
{
  echo "# Launch-path benchmarks"
  echo
  echo "Measured by \`bench/run.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), as uid $(id -u)."
  echo "Wall-clock time of each command (hyperfine -N: no shell in between; 3 warm-ups, at least 20 runs)."
  echo
  cat "$work/table.md"
} > "$out"
cat "$out"
