#!/usr/bin/env bash
# Launch-path benchmarks (issue 13): what clp adds before the program it launches starts,
# measured against the same launch done by hand, in one run of this script.
#
#   bench/run.sh            # as root (measures as root and as a normal user) or as a user
#   ROUNDS=50 bench/run.sh  # more rounds (default 30)
#   CLP_BEFORE=/tmp/old-clp bench/run.sh  # also compare levels A and B with another build
#
# Every comparison is a pair (clp, its baseline) timed alternately: each round runs
# hyperfine once with both commands (one warm-up and one timed run each, the order
# swapped every round), so a load change on the machine hits both sides of a pair alike.
# The table gives the median of each side, the median of the per-round ratios (with its
# interquartile range) and the median of the per-round differences.
#
# Writes bench/results.md and the results section of BENCHMARKS.md (between its markers).
# Needs: hyperfine, bubblewrap, jq, strace, inotify-tools, util-linux (setpriv); podman
# and the image `localhost/clp-claude:2.1.330` for level C (skipped without them). As
# root, the normal-user rows run as $BENCH_USER (default clptest), which must exist.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
rounds=${ROUNDS:-30}
image=localhost/clp-claude:2.1.330

need() {
  command -v "$1" >/dev/null || { echo "bench: needs $1 (apt-get install $2)" >&2; exit 1; }
}
need hyperfine hyperfine
need bwrap bubblewrap
need jq jq
need strace strace
need inotifywait inotify-tools
need setpriv util-linux

cargo build --release --quiet -p clp -p clp-test-backend

work=$(mktemp -d /tmp/clp-bench.XXXXXX)
chmod 755 "$work"
backend_pid=
stand_ins=()
cleanup() {
  [ -n "$backend_pid" ] && kill "$backend_pid" 2>/dev/null
  rm -rf "$work" "${stand_ins[@]}" 2>/dev/null || true
}
trap cleanup EXIT

# The binaries, where a normal user can run them.
mkdir -p "$work/bin"
cp target/release/clp target/release/clp-test-backend "$work/bin/"
chmod 755 "$work/bin"/*
clp="$work/bin/clp"

root=false
[ "$(id -u)" = 0 ] && root=true
if $root; then
  user=${BENCH_USER:-clptest}
  id "$user" >/dev/null 2>&1 || { echo "bench: as root, needs the user $user (BENCH_USER)" >&2; exit 1; }
else
  user=$(id -un)
fi
uid=$(id -u "$user")
gid=$(id -g "$user")

# A home per identity, a project in it owned by the normal user (as root, clp runs the
# sandbox as the owner of the workspace).
uhome="$work/user/home"
rhome="$work/root/home"
mkdir -p "$uhome/project" "$rhome/project" "$work/out"
chown -R "$uid:$gid" "$work/user" "$rhome/project"
chmod 777 "$work/out"
chmod 755 "$work/user" "$work/root"

PATH_ENV=/usr/local/bin:/usr/bin:/bin
# run_as WHO DIR CMD...: CMD in DIR, as the normal user or root, with a small fixed
# environment (the same for clp and its baseline).
run_as() {
  local who=$1 dir=$2
  shift 2
  if [ "$who" = user ]; then
    local pre=()
    $root && pre=(setpriv "--reuid=$uid" "--regid=$gid" --clear-groups --)
    (cd "$dir" && "${pre[@]}" env -i HOME="$uhome" PATH="$PATH_ENV" USER="$user" \
      LANG=C.UTF-8 TERM=dumb "$@")
  else
    (cd "$dir" && env -i HOME="$rhome" PATH="$PATH_ENV" USER=root LANG=C.UTF-8 TERM=dumb "$@")
  fi
}
home_of() { if [ "$1" = user ]; then echo "$uhome"; else echo "$rhome"; fi; }

# pair ID WHO CLP_CMD BASE_CMD: ROUNDS alternating rounds; appends "clp base" (ms) per
# round to $work/pairs/ID.
mkdir -p "$work/pairs"
failed() {
  echo "bench: pair $1 failed:" >&2
  tail -5 "$work/hyperfine.log" >&2
  exit 1
}
pair() {
  local id=$1 who=$2 a=$3 b=$4 dir r json
  dir="$(home_of "$who")/project"
  json="$work/out/round.json"
  : > "$work/pairs/$id"
  for r in $(seq "$rounds"); do
    rm -f "$json"
    if [ $((r % 2)) = 1 ]; then
      run_as "$who" "$dir" hyperfine -N --style none --warmup 1 --runs 1 \
        --export-json "$json" "$a" "$b" >/dev/null 2>>"$work/hyperfine.log" || failed "$id"
      jq -r '[.results[0].times[0], .results[1].times[0]] | map(. * 1000) | @tsv' "$json"
    else
      run_as "$who" "$dir" hyperfine -N --style none --warmup 1 --runs 1 \
        --export-json "$json" "$b" "$a" >/dev/null 2>>"$work/hyperfine.log" || failed "$id"
      jq -r '[.results[1].times[0], .results[0].times[0]] | map(. * 1000) | @tsv' "$json"
    fi >> "$work/pairs/$id"
  done
}

# The q-quantile (0..1) of the numbers on stdin.
quantile() {
  sort -g | awk -v q="$1" '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    p = 1 + (NR - 1) * q; i = int(p); f = p - i
    print (i < NR) ? v[i] + f * (v[i + 1] - v[i]) : v[i] }'
}
col() { awk -v c="$1" '{ print $c }' "$work/pairs/$2"; }
ratios() { awk '{ print $1 / $2 }' "$work/pairs/$1"; }
diffs() { awk '{ print $1 - $2 }' "$work/pairs/$1"; }

# row ID WHAT CLP_LABEL BASE_LABEL TARGET_KIND TARGET: one table row, and the verdict.
rows="$work/rows.md"
verdicts="$work/verdicts.md"
: > "$rows"
: > "$verdicts"
row() {
  local id=$1 what=$2 la=$3 lb=$4 kind=$5 target=$6
  local ma mb r r1 r3 d verdict=""
  ma=$(col 1 "$id" | quantile 0.5)
  mb=$(col 2 "$id" | quantile 0.5)
  r=$(ratios "$id" | quantile 0.5)
  r1=$(ratios "$id" | quantile 0.25)
  r3=$(ratios "$id" | quantile 0.75)
  d=$(diffs "$id" | quantile 0.5)
  case $kind in
    ratio) verdict=$(awk -v r="$r" -v t="$target" 'BEGIN { print (r <= t) ? "met" : "NOT met" }')
      verdict="ratio ≤ $target: **$verdict**" ;;
    diff) verdict=$(awk -v d="$d" -v t="$target" 'BEGIN { print (d <= t) ? "met" : "NOT met" }')
      verdict="+≤ $target ms: **$verdict**" ;;
    abs) verdict=$(awk -v m="$ma" -v t="$target" 'BEGIN { print (m < t) ? "met" : "NOT met" }')
      verdict="< $target ms: **$verdict**" ;;
  esac
  printf '| %s | %s | %.2f | %s | %.2f | %.3f (%.3f–%.3f) | %+.2f | %s |\n' \
    "$what" "$la" "$ma" "$lb" "$mb" "$r" "$r1" "$r3" "$d" "$verdict" >> "$rows"
  [ -n "$verdict" ] && echo "- $what: $verdict" >> "$verdicts"
  echo "  $what: clp $ma ms, baseline $mb ms, ratio $r, diff $d ms ${verdict:+($verdict)}" >&2
}

load_before=$(uptime)
echo "bench: $rounds rounds per pair; $load_before" >&2

# --- Level A -----------------------------------------------------------------------
# The baseline is env(1) starting `true` with exactly the environment clp gives it.
run_as user "$uhome/project" "$clp" run local-env --no-check -- true
env_words=$(run_as user "$uhome/project" "$clp" run local-env --no-check -- env \
  | sort | sed "s/.*/'&'/" | tr '\n' ' ')
pair a user "$clp run local-env --no-check -- true" "env -i $env_words true"
row a "A, normal user" '`clp run local-env -- true`' '`env -i <the same env> true`' diff 1

# --- Level B ------------------------------------------------------------------------
# The baseline is the bwrap argv `clp render --format json` prints, run directly: each
# `--bind-fd <fd:PATH> DEST` as `--bind PATH DEST` (`--ro-bind-fd` as `--ro-bind`), the
# session's IDE dir (made by clp per session) replaced by one made here, the command
# after the last `--` replaced by `true`, and `--seccomp <fd>` left out: bubblewrap
# cannot read a filter from a file, and a shell to feed it one would cost more than the
# filter (five rules, loaded in microseconds). The baseline does that much less work.
raw_argv() { # WHO PROFILE ARGS... -> the converted argv, one shell word per line
  local who=$1 profile=$2
  shift 2
  run_as "$who" "$(home_of "$who")/project" "$clp" "$@" render "$profile" --format json \
    | jq -r '.argv
      | (map(. == "--") | rindex(true)) as $cmd
      | .[0:$cmd + 1] + ["true"]
      | reduce .[] as $a ({out: [], skip: false};
          if .skip then .skip = false
          elif $a == "--seccomp" then .skip = true
          else .out += [$a] end)
      | .out
      | map(if . == "--bind-fd" then "--bind" elif . == "--ro-bind-fd" then "--ro-bind"
            else . end)
      | map(gsub("<session>"; "bench"))
      | map(if startswith("<fd:") then .[4:-1] else . end)
      | join(" ")'
}
open=(--set network.mode=open)
# stand_in DIR: makes the stand-in for a session dir (clp's own launch made its parent).
stand_in() {
  mkdir -p "$1/ide"
  chown -R "$uid:$gid" "$1"
  stand_ins+=("$1")
}
run_as user "$uhome/project" "$clp" "${open[@]}" run local-glm --no-check -- true
b_user_raw=$(raw_argv user local-glm "${open[@]}")
stand_in "$(printf '%s\n' $b_user_raw | grep -m1 '/bench/ide$' | xargs dirname)"
run_as user "$uhome/project" $b_user_raw
pair b "user" "$clp ${open[*]} run local-glm --no-check -- true" "$b_user_raw"
row b "B, normal user (network open)" '`clp run local-glm -- true`' 'its bwrap argv' ratio 1.10

if $root; then
  as_user=(--set "isolation.user=$user")
  run_as root "$rhome/project" "$clp" "${open[@]}" "${as_user[@]}" run local-glm --no-check -- true
  b_root_raw=$(raw_argv root local-glm "${open[@]}" "${as_user[@]}")
  stand_in "$(printf '%s\n' $b_root_raw | grep -m1 '/bench/ide$' | xargs dirname)"
  run_as root "$rhome/project" $b_root_raw
  pair broot root "$clp ${open[*]} ${as_user[*]} run local-glm --no-check -- true" "$b_root_raw"
  row broot "B, root (two layers)" '`clp run local-glm -- true`' 'its two-layer argv' none ""
  # What the root layer costs: the two-layer argv against the same setpriv starting the
  # normal user's one-layer argv (which binds its sources directly), both started by root.
  inner=${b_root_raw#* -- }
  setpriv_part=${inner%% -- *}
  pair layer root "$b_root_raw" "$setpriv_part -- $b_user_raw"
  row layer "B, root: the root layer" 'two-layer argv' 'setpriv + one-layer argv' none ""
fi

# What a real workspace adds at level B: clp looks at the workspace before and after the
# session for what a session could plant there (bounded: 20,000 entries, 8 levels).
big="$uhome/big-project"
mkdir -p "$big"
for d in $(seq 100); do
  mkdir -p "$big/src/m$d"
  for f in $(seq 50); do echo "// $d $f" > "$big/src/m$d/f$f.rs"; done
done
chown -R "$uid:$gid" "$big"
pair bigws user "$clp ${open[*]} --set workspace.path=$big run local-glm --no-check -- true" \
  "$clp ${open[*]} run local-glm --no-check -- true"
row bigws "B, a workspace of 5,000 files" 'workspace of 5,000 files' 'empty workspace' none ""

# --- Level C ------------------------------------------------------------------------
# The baseline is the engine's own `run --rm` with the options clp renders: the session
# dir replaced by one made here, and the image's command `true` instead of clp's
# mount-identity check and lock watchdog (a shell in the container), which clp's side runs.
c_skip=""
if ! $root; then
  c_skip="run as root: the image is in root's Podman storage here"
elif ! command -v podman >/dev/null; then
  c_skip="podman not installed"
elif ! podman image exists "$image" 2>/dev/null; then
  c_skip="image $image missing (scripts/ci-podman.sh builds it)"
fi
if [ -z "$c_skip" ]; then
  c_json=$(run_as root "$rhome/project" "$clp" "${open[@]}" "${as_user[@]}" \
    render local-container --format json)
  c_raw=$(jq -r --arg image "$image" '.argv
    | index($image) as $i
    | .[0:$i + 1] + ["true"]
    | map(gsub("<session>"; "bench") | gsub("^--name=.*"; "--name=clp-bench-baseline"))
    | join(" ")' <<< "$c_json")
  run_as root "$rhome/project" "$clp" "${open[@]}" "${as_user[@]}" \
    run local-container --no-check -- true
  stand_in "$(jq -r '.session_dir' <<< "$c_json" | sed 's/<session>/bench/')"
  run_as root "$rhome/project" $c_raw
  pair c root "$clp ${open[*]} ${as_user[*]} run local-container --no-check -- true" "$c_raw"
  row c "C, root, Podman" '`clp run local-container -- true`' '`podman run --rm` same options' none ""
else
  echo "| C | skipped: $c_skip | | | | | | |" >> "$rows"
fi

# --- Scale --------------------------------------------------------------------------
# Profile dirs with 1, 1,000 and 10,000 profiles, each extending the built-in local-env.
make_profiles() { # DIR COUNT
  mkdir -p "$1"
  local i
  for i in $(seq "$2"); do
    printf 'description = "bench profile %s"\nextends = "local-env"\n\n[model]\ndefault = "model-%s"\n' \
      "$i" "$i" > "$1/p$i.toml"
  done
  chmod -R a+rX "$1"
}
make_profiles "$work/p1" 1
make_profiles "$work/p1000" 1000
make_profiles "$work/p10000" 10000
pd() { echo "$clp --profiles-dir $work/p$1"; }
pair s1000 user "$(pd 1000) run p1 --no-check -- true" "$(pd 1) run p1 --no-check -- true"
row s1000 "1,000 profiles in the dir" '`clp run p1`, 1,000 profiles' 'the same, 1 profile' ratio 1.05
pair s10000 user "$(pd 10000) run p1 --no-check -- true" "$(pd 1) run p1 --no-check -- true"
row s10000 "10,000 profiles in the dir" '`clp run p1`, 10,000 profiles' 'the same, 1 profile' none ""
pair l1000 user "$(pd 1000) list" "$(pd 1) list"
row l1000 "\`clp list\`, 1,000 profiles" '`clp list`, 1,000' '`clp list`, 1' abs 100
pair c1000 user "$(pd 1000) check" "$(pd 1) check"
row c1000 "\`clp check\`, 1,000 profiles" '`clp check`, 1,000' '`clp check`, 1' abs 100
pair l10000 user "$(pd 10000) list" "$(pd 1) list"
row l10000 "\`clp list\`, 10,000 profiles" '`clp list`, 10,000' '`clp list`, 1' none ""
pair c10000 user "$(pd 10000) check" "$(pd 1) check"
row c10000 "\`clp check\`, 10,000 profiles" '`clp check`, 10,000' '`clp check`, 1' none ""

# --- The network policy ---------------------------------------------------------------
allow=(--set network.mode=allowlist)
offline=(--set network.mode=offline)
pair net user "$clp ${allow[*]} run local-glm --no-check -- true" \
  "$clp ${open[*]} run local-glm --no-check -- true"
row net "B, allowlist against open" '`network.mode = "allowlist"`' '`network.mode = "open"`' diff 5
pair netoff user "$clp ${offline[*]} run local-glm --no-check -- true" \
  "$clp ${open[*]} run local-glm --no-check -- true"
row netoff "B, offline against open" '`network.mode = "offline"`' '`network.mode = "open"`' none ""

# --- Smaller things -------------------------------------------------------------------
"$work/bin/clp-test-backend" --port 0 > "$work/backend.out" &
backend_pid=$!
for _ in $(seq 50); do grep -q listening "$work/backend.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/backend.out")
pair probe user "$clp --set backend.url=$url run local-env -- true" \
  "$clp --set backend.url=$url run local-env --no-check -- true"
row probe "A, with the backend probe" 'with the probe' '`--no-check`' none ""
pair dry user "$clp use local-env --dry-run" "$clp --version"
row dry "\`clp use --dry-run\`" '`clp use local-env --dry-run`' '`clp --version`' none ""

# --- Against another build (CLP_BEFORE=/path/to/an/older/clp) ---------------------------
if [ -n "${CLP_BEFORE:-}" ]; then
  cp "$CLP_BEFORE" "$work/bin/clp-before"
  chmod 755 "$work/bin/clp-before"
  before="$work/bin/clp-before"
  pair beforea user "$clp run local-env --no-check -- true" "$before run local-env --no-check -- true"
  row beforea "A, this build against CLP_BEFORE" 'this clp' 'CLP_BEFORE' none ""
  pair beforeb user "$clp ${open[*]} run local-glm --no-check -- true" \
    "$before ${open[*]} run local-glm --no-check -- true"
  row beforeb "B, this build against CLP_BEFORE" 'this clp' 'CLP_BEFORE' none ""
fi

# --- Steady state: a relaunch writes nothing --------------------------------------------
# inotify over the whole test home (clp's state and config dirs, the profile's dirs, the
# workspace) and over clp's runtime dir (in memory) while an unchanged profile is launched
# again; strace lists clp's own calls that could create, rename or remove a file.
steady="$work/steady.md"
: > "$steady"
relaunch() { # LABEL WHO RUNTIME CLP-ARGS...
  local label=$1 who=$2 runtime=$3 home log events strace_log n_home n_run
  shift 3
  home=$(home_of "$who")
  log="$work/inotify.log"
  run_as "$who" "$home/project" "$clp" "$@" >/dev/null # the first launch writes
  mkdir -p "$runtime"
  [ "$who" = user ] && chown "$uid:$gid" "$runtime"
  : > "$log" # inotifywait -o appends
  inotifywait -m -r -e create,modify,attrib,close_write,moved_from,moved_to,delete \
    --format '%w%f %e' -o "$log" "$home" "$runtime" 2> "$work/inotify.err" &
  local ipid=$!
  for _ in $(seq 100); do grep -q 'Watches established' "$work/inotify.err" && break; sleep 0.05; done
  strace_log="$work/out/strace.log"
  run_as "$who" "$home/project" strace -o "$strace_log" \
    -e trace=open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,symlink,symlinkat,link,linkat \
    "$clp" "$@" >/dev/null
  sleep 0.3
  kill "$ipid"
  wait "$ipid" 2>/dev/null || true
  events=$(sort -u "$log" | sed "s|$work|<bench>|")
  n_home=$(grep -c "^$home" "$log" || true)
  n_run=$(grep -c "^$runtime" "$log" || true)
  local calls
  calls=$(grep -E 'O_CREAT|mkdir|rename|unlink|rmdir|symlink|link\(' "$strace_log" \
    | grep -v ' = -1 ' | sed "s|$work|<bench>|g" || true)
  {
    echo "**$label** (\`clp $*\`): $n_home file events in the home (state, config, workspace); $n_run in the runtime dir."
    echo
    echo '```'
    echo "inotify:"
    [ -n "$events" ] && echo "$events" || echo "  (none)"
    echo "clp's calls that succeeded and can create, rename or remove (strace, clp's own process):"
    [ -n "$calls" ] && echo "$calls" || echo "  (none)"
    echo '```'
    echo
  } >> "$steady"
  echo "- relaunch, $label: $n_home file events in the home: **$([ "$n_home" = 0 ] && echo met || echo 'NOT met')**" >> "$verdicts"
}
relaunch "A, normal user" user "/dev/shm/clp-$uid" run local-env --no-check -- true
relaunch "B, normal user, offline" user "/dev/shm/clp-$uid" run local-glm --no-check -- true
if $root; then
  relaunch "B, root" root /run/clp "${as_user[@]}" run local-glm --no-check -- true
fi

load_after=$(uptime)

# --- The report -----------------------------------------------------------------------
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Local changes other than this script's own output.
dirty=$(git status --porcelain --untracked-files=no -- . ':!bench/results.md' ':!BENCHMARKS.md' \
  2>/dev/null | grep -q . && echo " (with local changes)" || true)
report="$work/report.md"
{
  echo "Measured by \`bench/run.sh\` on $(date -u +%Y-%m-%d) at clp $rev$dirty, as uid $(id -u)"
  echo "(normal-user rows as \`$user\`), $rounds alternating rounds per pair."
  echo
  echo "- machine: $cpu, $(nproc) cores, $mem, Linux $(uname -r)"
  echo "- $(hyperfine --version), $(bwrap --version)$(command -v podman >/dev/null && echo ", $(podman --version)")"
  echo "- load before: \`${load_before#*load average: }\`, after: \`${load_after#*load average: }\` (1, 5, 15 min)"
  echo
  echo "| what | clp | median ms | baseline | median ms | ratio (IQR) | diff ms | target |"
  echo "| --- | --- | ---: | --- | ---: | ---: | ---: | --- |"
  cat "$rows"
  echo
  echo "Targets:"
  echo
  cat "$verdicts"
  echo
  echo "Relaunch with an unchanged profile:"
  echo
  cat "$steady"
} > "$report"
{
  echo "# Launch-path benchmarks: the latest run"
  echo
  echo "Generated by \`bench/run.sh\`; BENCHMARKS.md says how to read it."
  echo
  cat "$report"
} > bench/results.md
if grep -q '<!-- results:begin -->' BENCHMARKS.md 2>/dev/null; then
  awk -v report="$report" '
    /<!-- results:end -->/ { while ((getline line < report) > 0) print line; skip = 0 }
    !skip { print }
    /<!-- results:begin -->/ { print ""; skip = 1 }' BENCHMARKS.md > "$work/B.md"
  cp "$work/B.md" BENCHMARKS.md
fi
cat bench/results.md
