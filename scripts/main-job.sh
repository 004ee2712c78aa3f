#!/usr/bin/env bash
# The main job of scripts/setup.sh. Until `tsfig up` lands (Orchestration issue) it proves the engine end to end:
# imports the base images into the default store and runs a container from each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/base-images.sh --import
tsfig() { node bin/tsfig.js "$@"; }
tsfig container run --rm tsfig/busybox sh -c 'echo "busybox container $(hostname) runs as pid $$"'
tsfig container run --rm tsfig/debian:bookworm sh -c 'echo "debian container: $(redis-server --version | cut -d" " -f1-3), $(python3 --version)"'
echo "tsfig is set up. Try: node bin/tsfig.js container run --rm -it tsfig/busybox sh" >&2
