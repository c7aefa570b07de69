#!/usr/bin/env bash
# Nothing the tests started may outlive them: every server (llama-server, the test
# backend, podman system service), sandbox (bwrap, the network helper), container, tmux
# server and process of the test user is stopped by the test that started it.
#
#   scripts/leftovers.sh snapshot FILE      before the tests: what runs already
#   scripts/leftovers.sh check FILE [SID]   after: what is new and theirs; exit 1 if any
#
# A process is the tests' when it is new (not in the snapshot) and either in the test
# run's session SID (it inherits it unless it calls setsid), or owned by the test user
# ($CLP_TEST_USER), or its command line or working directory names a test's temporary
# dir (`clp-it-`, tempfile's `.tmp`), or it is one of the programs the tests run as
# servers or sandboxes. Containers: any `clp-*` one, of root or of the test user.
# Survivors are listed with their command line and the check fails; nothing is killed
# (on a shared machine a match may be someone else's test run: the check is meant for CI,
# where the tests are all that runs). It waits a little first: a process being torn
# down is not a leak.
set -uo pipefail

mode="${1:-}"
file="${2:-}"
sid="${3:-}"
test_user="${CLP_TEST_USER:-clptest}"
test_uid="$(id -u "$test_user" 2>/dev/null || echo none)"

# "pid starttime state session" of every process; pid and start time (clock ticks since
# boot) name one process even when pids are reused.
processes() {
  local stat pid rest
  local -a f
  for stat in /proc/[0-9]*/stat; do
    pid="${stat#/proc/}"
    pid="${pid%/stat}"
    read -r rest 2>/dev/null <"$stat" || continue
    rest="${rest##*) }" # after the command name, which may hold spaces
    read -ra f <<<"$rest"
    # Fields 3 (state), 6 (session) and 22 (start time), counted from the pid.
    printf '%s %s %s %s\n' "$pid" "${f[19]}" "${f[0]}" "${f[3]}"
  done
}

# The tests' processes that run now and were not in the snapshot, one line each.
survivors() {
  local pid start state session cmd cwd uid exe why
  local -A before=()
  while read -r pid start; do before["$pid $start"]=1; done <"$file"
  while read -r pid start state session; do
    [ -n "${before["$pid $start"]:-}" ] && continue
    [ "$pid" = $$ ] || [ "$state" = Z ] && continue
    cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || continue
    [ -n "$cmd" ] || continue # kernel threads
    # Rootless Podman's pause process holds the user's namespace by design; it is
    # Podman's, started by whatever first runs rootless podman (the image setup too).
    case "$cmd" in *catatonit\ -P*) continue ;; esac
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    uid="$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
    why=""
    case "$cmd $cwd" in *clp-it-* | */.tmp*) why="in a test's temporary dir" ;; esac
    case "${exe##*/}" in llama-server | clp-test-backend) why="a test server" ;; esac
    [ "$uid" = "$test_uid" ] && why="runs as $test_user"
    [ -n "$sid" ] && [ "$session" = "$sid" ] && why="in the test run's session"
    [ -n "$why" ] && printf '%s\t%s\t%s\t%s\n' "$pid" "$why" "${cwd:-?}" "$cmd"
  done < <(processes)
  return 0
}

# `podman` as the test user, when clp's tests run as root.
as_user=()
if [ "$(id -u)" = 0 ] && [ "$test_uid" != none ]; then
  as_user=(setpriv --reuid="$test_uid" --regid="$(id -g "$test_user")" --init-groups --
    env -i HOME="$(getent passwd "$test_user" | cut -d: -f6)" PATH=/usr/local/bin:/usr/bin:/bin)
fi

containers() {
  command -v podman >/dev/null || return 0
  (cd / && podman ps -a --format '{{.Names}}' 2>/dev/null) | grep '^clp-' | sed 's/^/root\t/'
  if [ "${#as_user[@]}" -gt 0 ]; then
    (cd / && "${as_user[@]}" podman ps -a --format '{{.Names}}' 2>/dev/null) |
      grep '^clp-' | sed "s/^/$test_user\t/"
  fi
}

case "$mode" in
snapshot)
  processes | awk '{print $1, $2}' >"$file"
  ;;
check)
  left="" boxes=""
  for _ in $(seq 40); do
    left="$(survivors)"
    boxes="$(containers)"
    [ -z "$left$boxes" ] && break
    sleep 0.5
  done
  if [ -z "$left$boxes" ]; then
    echo "nothing the tests started is still running"
    exit 0
  fi
  echo "still running after the tests (each test must stop what it starts):" >&2
  [ -n "$left" ] && printf '%s\n' "$left" | sed 's/^/  process /' >&2
  [ -n "$boxes" ] && printf '%s\n' "$boxes" | sed 's/^/  container /' >&2
  exit 1
  ;;
*)
  echo "usage: $0 snapshot FILE | check FILE [SID]" >&2
  exit 2
  ;;
esac
