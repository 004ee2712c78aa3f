#!/usr/bin/env bash
# Builds the base root filesystems used by examples and tests, from Debian's packages only, and caches them under
# /var/cache/tsfig (outside the clone) so a rebuild is skipped when present:
#   busybox-<ver>.tar          Debian's busybox-static with its applets, /etc/passwd, /etc/group
#   debian-bookworm-<key>.tar  debootstrap minbase + redis-server, redis-tools, python3, python3-redis, busybox
# With --import, also imports them into the engine's store (TSFIG_ROOT, default /var/lib/tsfig) as
# tsfig/busybox:latest and tsfig/debian:bookworm, unless already there.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TSFIG_CACHE:-/var/cache/tsfig}
mkdir -p "$cache"

busybox_version=$(dpkg-query -W -f="\${Version}" busybox-static | tr ":" "_")
busybox_tar="$cache/busybox-${busybox_version}.tar"
debian_packages="redis-server,redis-tools,python3,python3-redis,busybox"
debian_key=$(printf '%s' "bookworm minbase $debian_packages v1" | sha256sum | cut -c1-12)
debian_tar="$cache/debian-bookworm-${debian_key}.tar"

build_busybox() {
  local dir
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,home,var/tmp}
  chmod 1777 "$dir/tmp" "$dir/var/tmp"
  install -m 0755 /bin/busybox "$dir/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\ndaemon:x:1:\nusers:x:100:nobody\nnogroup:x:65534:\n' >"$dir/etc/group"
  tar --numeric-owner --xattrs -C "$dir" -cf "$busybox_tar.tmp" .
  mv "$busybox_tar.tmp" "$busybox_tar"
}

# The Debian mirror this machine's apt already uses (never a host written into the repo).
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
  fi
  [ -n "$uri" ] || { echo "base-images: no Debian mirror configured for apt" >&2; exit 1; }
  printf '%s' "$uri"
}

build_debian() {
  local dir
  dir=$(mktemp -d /var/tmp/tsfig-debootstrap.XXXXXX)
  trap 'umount -R "$dir/proc" "$dir/sys" 2>/dev/null || true; rm -rf "$dir"' RETURN
  echo "base-images: debootstrap bookworm (about a minute)..." >&2
  debootstrap --variant=minbase --include="$debian_packages" bookworm "$dir" "$(debian_mirror)" >"$dir.log" 2>&1 || {
    tail -n 20 "$dir.log" >&2
    rm -f "$dir.log"
    exit 1
  }
  rm -f "$dir.log"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log
  tar --numeric-owner --xattrs -C "$dir" -cf "$debian_tar.tmp" .
  mv "$debian_tar.tmp" "$debian_tar"
}

[ -f "$busybox_tar" ] || build_busybox
[ -f "$debian_tar" ] || build_debian
ln -sfn "$(basename "$busybox_tar")" "$cache/busybox.tar"
ln -sfn "$(basename "$debian_tar")" "$cache/debian-bookworm.tar"

if [ "${1:-}" = "--import" ]; then
  tsfig() { node bin/tsfig.js "$@"; }
  tsfig image inspect tsfig/busybox:latest >/dev/null 2>&1 || tsfig image import "$cache/busybox.tar" tsfig/busybox:latest >/dev/null
  tsfig image inspect tsfig/debian:bookworm >/dev/null 2>&1 || tsfig image import "$cache/debian-bookworm.tar" tsfig/debian:bookworm >/dev/null
fi
