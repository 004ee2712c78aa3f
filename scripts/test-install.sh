#!/usr/bin/env bash
# The package as users get it: `npm pack`, `npm install -g` of the tarball into a scratch prefix, then the installed
# `tsfig --version` and `tsfig container run --rm` (as root: a busybox image imported into a scratch state root), and
# rootless (as root, for an ordinary user tsfig-rl with a subordinate id range): the redis + app example as that user,
# `up -d --wait`, two counted visits through 127.0.0.1, `logs`, `down`, `system shutdown`, and nothing left behind.
#   scripts/test-install.sh [--built]
# Everything it creates (prefix, tarball, state root, run dir) is removed on every exit path.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=$(mktemp -d /tmp/tsfig-install.XXXXXX)
chmod 755 "$scratch" # the installed CLI is run by an ordinary user too (mktemp makes it 0700)
export TSFIG_ROOT="$scratch/root"
rl_user=tsfig-rl
rl_dir=
cleanup() {
  if [ -n "$rl_dir" ]; then
    as_user "$scratch/prefix/bin/tsfig" system shutdown --force >/dev/null 2>&1 || true
    pkill -KILL -u "$rl_user" 2>/dev/null || true
    rm -rf "$rl_dir" "$(eval echo "~$rl_user")/.local/share/tsfig" "$(eval echo "~$rl_user")/.cache/tsfig" \
      "/tmp/tsfig-$(id -u "$rl_user")"
  fi
  if [ -x "$scratch/prefix/bin/tsfig" ] && [ -d "$TSFIG_ROOT" ]; then
    "$scratch/prefix/bin/tsfig" container prune -f >/dev/null 2>&1 || true
    "$scratch/prefix/bin/tsfig" image rm tsfig-install/busybox >/dev/null 2>&1 || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

# --built: the caller (scripts/test.sh) has just built dist/, so pack skips prepack's second build.
pack_flags=()
[ "${1:-}" = --built ] && pack_flags=(--ignore-scripts)
npm pack --silent "${pack_flags[@]}" --pack-destination "$scratch" >/dev/null
tarball=$(ls "$scratch"/tsfig-*.tgz)
npm install -g --silent --no-audit --no-fund --prefix "$scratch/prefix" "$tarball" >/dev/null 2>&1 ||
  npm install -g --no-audit --no-fund --prefix "$scratch/prefix" "$tarball"
tsfig="$scratch/prefix/bin/tsfig"

version=$("$tsfig" --version)
want=$(node -p 'require("./package.json").version')
[ "$version" = "$want" ] || { echo "test-install: tsfig --version printed '$version', want '$want'" >&2; exit 1; }
# The install ships the bundle, not the sources: nothing of src/ or the TypeScript toolchain is needed.
[ ! -e "$scratch/prefix/lib/node_modules/tsfig/src" ] || { echo "test-install: the package ships src/" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
  image=/var/cache/tsfig/busybox.tar
  [ -f "$image" ] || { echo "test-install: $image is missing (scripts/base-images.sh builds it)" >&2; exit 1; }
  "$tsfig" image import "$image" tsfig-install/busybox >/dev/null
  out=$("$tsfig" container run --rm tsfig-install/busybox echo installed-ok)
  [ "$out" = installed-ok ] || { echo "test-install: container run printed '$out'" >&2; exit 1; }
  # An ordinary user gets a clear refusal, not a stack trace (the state root is root's).
  set +e
  denied=$(cd / && setpriv --reuid=65534 --regid=65534 --clear-groups "$tsfig" image import "$image" x 2>&1)
  status=$?
  set -e
  if [ "$status" != 77 ] || ! grep -q '^error: ' <<<"$denied" || grep -q 'internal error' <<<"$denied"; then
    echo "test-install: an ordinary user's image import: exit $status, printed:" >&2
    echo "$denied" >&2
    exit 1
  fi
  left=$("$tsfig" container ls -a -q)
  [ -z "$left" ] || { echo "test-install: run --rm left containers: $left" >&2; exit 1; }
fi
if [ "$(id -u)" = 0 ]; then
  # rootless: the installed tsfig as an ordinary user, no sudo (issue #16)
  bash scripts/rootless-user.sh "$rl_user"
  rl_home=$(eval echo "~$rl_user")
  as_user() {
    (cd "$rl_dir/redis-app" && setpriv --reuid="$rl_user" --regid="$rl_user" --init-groups \
      env -i HOME="$rl_home" USER="$rl_user" PATH="$PATH" TSFIG_DNS_FORWARD=0 WEB_PORT="$rl_port" "$@")
  }
  rl_dir=$(mktemp -d /tmp/tsfig-rl-example.XXXXXX)
  cp -r examples/redis-app "$rl_dir/"
  chown -R "$rl_user:" "$rl_dir"
  rl_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_user "$scratch/prefix/bin/tsfig" image import /var/cache/tsfig/debian-bookworm.tar tsfig/debian:bookworm >/dev/null
  # Output is captured before it is searched: with pipefail, `tsfig logs | grep -q` fails whenever grep has found its
  # line and exited while tsfig was still writing (tsfig gets EPIPE) — the check failed that way twice in CI.
  rl_info=$(as_user "$scratch/prefix/bin/tsfig" info)
  grep -q '^Mode: rootless$' <<<"$rl_info" || { echo "test-install: tsfig info does not say rootless" >&2; exit 1; }
  as_user "$scratch/prefix/bin/tsfig" --progress plain up -d --wait
  for want in 1 2; do
    got=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end="")' "http://127.0.0.1:$rl_port/")
    grep -q "seen $want times" <<<"$got" || { echo "test-install: rootless visit $want answered '$got'" >&2; exit 1; }
  done
  # the server logs a request after answering it: give its line a moment to reach the container's log
  for _ in $(seq 1 50); do
    rl_logs=$(as_user "$scratch/prefix/bin/tsfig" logs)
    grep -q 'GET / ' <<<"$rl_logs" && break
    sleep 0.2
  done
  grep -q 'GET / ' <<<"$rl_logs" || {
    echo "$rl_logs" >&2
    echo "test-install: rootless logs do not show the visits" >&2
    exit 1
  }
  # the processes run as the user and its subordinate ids, never as root
  if ps -eo user,args | grep -v grep | grep -E '^root .*(redis-server|app\.py)'; then
    echo "test-install: a rootless container process runs as root" >&2
    exit 1
  fi
  as_user "$scratch/prefix/bin/tsfig" down
  as_user "$scratch/prefix/bin/tsfig" system shutdown
  [ ! -e "/tmp/tsfig-$(id -u "$rl_user")" ] || { echo "test-install: the session's runtime dir is left after shutdown" >&2; exit 1; }
  left=$(ps -u "$rl_user" -o pid=,stat=,args= | awk '$2 !~ /^Z/' || true)
  [ -z "$left" ] || { echo "test-install: processes of $rl_user left after shutdown: $left" >&2; exit 1; }
  echo "# rootless: redis + app as $rl_user (up -d --wait, 2 visits, logs, down, shutdown): ok"
fi
echo "# install: npm pack + npm install -g + tsfig --version ($version)$([ "$(id -u)" = 0 ] && echo ' + container run --rm'): ok"
