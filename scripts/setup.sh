#!/usr/bin/env bash
# Sets up a fresh machine of this kind (root, Debian bookworm, Node 20) for tsfig and its tests.
# Idempotent: each step is skipped when its result is already there.
#   scripts/setup.sh          install everything, then run the main example
#   scripts/setup.sh --deps   install everything, run nothing
#   scripts/setup.sh --user NAME   also make NAME ready for rootless tsfig (a subordinate id range; see README)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (tsfig's engine creates namespaces, mounts, cgroups and nftables rules)" >&2
  exit 77
fi

# Debian packages the project, its tests and its benchmarks use.
packages=(
  build-essential pkg-config libseccomp-dev   # native/ helper
  libisal-dev zlib1g-dev libssl-dev           # its unpacker: ISA-L's inflate (zlib without it), sha256 (native/PROTOCOL.md)
  nftables iproute2 iptables procps psmisc util-linux  # networking (iptables: Docker coexistence tests), processes, mounts
  python3                                     # test helpers and the examples' tooling
  docker-compose                              # compose 1.29, to compare project file meaning in tests
  docker-registry skopeo umoci apache2-utils zstd openssl  # registry/archive tests (127.0.0.1, htpasswd -B, TLS)
  debootstrap busybox-static                  # base images, built locally
  crun runc                                   # benchmark baselines
  tmux                                        # terminal tests
  uidmap slirp4netns                          # rootless mode: newuidmap/newgidmap, published ports and outside traffic
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The second local user that test/security's "other local user" probes run as (setpriv), never logged in.
id -u tsfig-probe >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tsfig-probe

# `--userns auto` (root): the subordinate ids containers get, podman's user `containers` and its documented range.
for file in /etc/subuid /etc/subgid; do
  grep -q '^containers:' "$file" 2>/dev/null || echo 'containers:2147483647:2147483648' >>"$file"
done

# slirp4netns opens /dev/net/tun as the user: Debian's udev makes it 0666, a machine without udev leaves it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then chmod 0666 /dev/net/tun; fi

user=
if [ "${1:-}" = --user ]; then
  user=${2:?usage: scripts/setup.sh --user NAME}
  shift 2
fi
if [ -n "$user" ]; then bash scripts/rootless-user.sh "$user"; fi

# Node dependencies plus the native build and TypeScript build (npm's install script runs both).
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.tsfig-lock-sum 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.tsfig-lock-sum
else
  npm run -s build
fi

# Base images for examples and tests, cached under /var/cache/tsfig.
bash scripts/base-images.sh

if [ "${1:-}" = "--deps" ]; then exit 0; fi
bash scripts/main-job.sh
