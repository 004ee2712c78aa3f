#!/usr/bin/env bash
# The package as users get it: `npm pack`, `npm install -g` of the tarball into a scratch prefix, then the installed
# `tsfig --version` and `tsfig container run --rm` (as root: a busybox image imported into a scratch state root).
#   scripts/test-install.sh [--built]
# Everything it creates (prefix, tarball, state root, run dir) is removed on every exit path.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=$(mktemp -d /tmp/tsfig-install.XXXXXX)
chmod 755 "$scratch" # the installed CLI is run by an ordinary user too (mktemp makes it 0700)
export TSFIG_ROOT="$scratch/root"
cleanup() {
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
echo "# install: npm pack + npm install -g + tsfig --version ($version)$([ "$(id -u)" = 0 ] && echo ' + container run --rm'): ok"
