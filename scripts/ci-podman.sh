#!/usr/bin/env bash
# Level C on this machine: Podman, and the image `localhost/clp-claude:VERSION` that the
# shipped container profile uses, built offline (Debian's mirror and the npm registry are
# the only downloads) and cached.
#
#   scripts/ci-podman.sh [USER...]
#
# Builds the image in the storage of whoever runs the script (root: /var/lib/containers)
# and, when run as root, copies it into the rootless storage of each USER named (rootless
# images live per user, under ~/.local/share/containers). Every step is skipped when its
# result exists, so a rerun takes about a second.
#
# The image: a Debian bookworm minbase root filesystem (debootstrap, about 40 s) with
# Claude Code's native binary (glibc) from the npm package
# `@anthropic-ai/claude-code@VERSION` at /usr/local/bin/claude. Node.js is needed only on
# the host, to fetch the package; the image has none.
#
# Environment: CLP_CLAUDE_VERSION (default 2.1.330), CLP_TEST_CLAUDE (a `claude` binary of
# that version to use instead of fetching it), XDG_CACHE_HOME.
set -euo pipefail

version="${CLP_CLAUDE_VERSION:-2.1.330}"
image="localhost/clp-claude:$version"
base="localhost/clp-base:bookworm"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/clp-ci"
# The Debian mirror apt is already configured to use (first non-security Debian URI).
apt_mirror() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '$1 == "URIs:" || $1 == "deb" {
      for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit }
    }' || true
}
mirror="${CLP_DEBIAN_MIRROR:-$(apt_mirror)}"
[ -n "$mirror" ] || { echo "no Debian mirror in apt's sources; set CLP_DEBIAN_MIRROR" >&2; exit 1; }
mkdir -p "$cache"
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*"; }
root() { [ "$(id -u)" = 0 ]; }

# Rootful Podman here needs runc (crun fails on hybrid cgroups) and explicit ulimits (the
# default nofile cannot be set); clp renders the same file for its own root launches.
conf="$cache/podman-root-containers.conf"
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n\n[engine]\nruntime = "runc"\n' >"$conf"
pm() {
  if root; then CONTAINERS_CONF="$conf" podman "$@"; else podman "$@"; fi
}

# `podman` as another user, with a clean environment (its own HOME, its own storage).
as_user() {
  local name="$1" uid gid home
  shift
  uid="$(id -u "$name")"
  gid="$(id -g "$name")"
  home="$(getent passwd "$name" | cut -d: -f6)"
  (cd / && setpriv --reuid="$uid" --regid="$gid" --init-groups -- \
    env -i HOME="$home" USER="$name" LOGNAME="$name" PATH=/usr/local/bin:/usr/bin:/bin "$@")
}

if root; then
  step "Debian packages: podman, runc, uidmap, slirp4netns, fuse-overlayfs, debootstrap"
  need=()
  for pkg in podman runc uidmap slirp4netns fuse-overlayfs debootstrap; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
podman --version

if ! pm image exists "$image"; then
  step "Claude Code $version (npm @anthropic-ai/claude-code, native binary)"
  claude="${CLP_TEST_CLAUDE:-}"
  if [ -z "$claude" ] || ! "$claude" --version 2>/dev/null | grep -q "^$version "; then
    claude="$cache/claude-code/node_modules/.bin/claude"
    if ! "$claude" --version 2>/dev/null | grep -q "^$version "; then
      npm install --silent --prefix "$cache/claude-code" "@anthropic-ai/claude-code@$version"
    fi
  fi
  claude="$(readlink -f "$claude")"
  if [ "$(head -c 4 "$claude" | od -An -c | tr -d ' ')" != '177ELF' ]; then
    echo "error: $claude is not the native binary (an older npm package?)" >&2
    exit 1
  fi
  "$claude" --version

  if ! pm image exists "$base"; then
    step "Base image $base (debootstrap --variant=minbase bookworm)"
    tarball="$cache/clp-base-bookworm.tar"
    if [ ! -s "$tarball" ]; then
      root || { echo "error: debootstrap needs root; run this script as root first" >&2; exit 1; }
      # dpkg's fsyncs make debootstrap twice as slow on disk: build in memory when there
      # is room (the tree is about 220 MB before trimming).
      parent="${TMPDIR:-/tmp}"
      if [ "$(df --output=avail -k /dev/shm 2>/dev/null | tail -1)" -gt 600000 ] 2>/dev/null; then
        parent=/dev/shm
      fi
      rootfs="$(mktemp -d -p "$parent" clp-rootfs.XXXXXX)"
      trap 'rm -rf "$rootfs"' EXIT
      start=$SECONDS
      debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" \
        >"$cache/debootstrap.log" 2>&1 || {
        tail -20 "$cache/debootstrap.log" >&2
        exit 1
      }
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/info
      find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
        -exec rm -rf {} +
      tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
      mv "$tarball.tmp" "$tarball"
      rm -rf "$rootfs"
      trap - EXIT
      echo "debootstrap took $((SECONDS - start)) s"
    fi
    pm import --quiet --change 'CMD ["/bin/bash"]' "$tarball" "$base"
  fi

  step "Image $image"
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  ln "$claude" "$ctx/claude" 2>/dev/null || cp "$claude" "$ctx/claude"
  cat >"$ctx/Containerfile" <<EOF
FROM $base
COPY claude /usr/local/bin/claude
ENV DISABLE_AUTOUPDATER=1
CMD ["claude"]
EOF
  start=$SECONDS
  pm build --quiet --network=none --tag "$image" "$ctx" >/dev/null
  rm -rf "$ctx"
  trap - EXIT
  echo "built in $((SECONDS - start)) s"
fi
pm run --rm --network=host "$image" claude --version

for user in "$@"; do
  root || { echo "error: only root can fill another user's storage" >&2; exit 1; }
  step "Rootless storage of $user"
  home="$(getent passwd "$user" | cut -d: -f6)"
  # overlay, not vfs (20x slower and a full copy per container). The driver is fixed when
  # the storage is first used, so set it before, or reset an empty vfs storage.
  uconf="$home/.config/containers/storage.conf"
  if [ ! -e "$uconf" ]; then
    as_user "$user" sh -c 'mkdir -p ~/.config/containers && printf "[storage]\ndriver = \"overlay\"\n" > ~/.config/containers/storage.conf'
  fi
  driver="$(as_user "$user" podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)"
  if [ "$driver" != overlay ]; then
    if [ -z "$(as_user "$user" podman images -q 2>/dev/null)" ]; then
      as_user "$user" podman system reset --force >/dev/null 2>&1 || true
    else
      echo "warning: $user's storage uses $driver and has images; leaving it as it is" >&2
    fi
  fi
  for img in "$base" "$image"; do
    pm image exists "$img" || { echo "warning: $img is not in root's storage" >&2; continue; }
    if ! as_user "$user" podman image exists "$img"; then
      start=$SECONDS
      pm save "$img" | as_user "$user" podman load --quiet
      echo "copied $img in $((SECONDS - start)) s"
    fi
  done
  # As clp runs it (keep-id): the first such run copies the image's layers once (~3 s).
  as_user "$user" podman run --rm --userns=keep-id --network=host "$image" claude --version
done
