#!/usr/bin/env bash
# The main job of scripts/setup.sh: brings up the redis + app example (examples/redis-app) and shows it answering.
# Leaves the stack running; stop it with: node bin/tsfig.js -f examples/redis-app/tsfig.yml down
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/base-images.sh --import
tsfig() { node bin/tsfig.js "$@"; }
export WEB_PORT=${WEB_PORT:-8000}
tsfig -f examples/redis-app/tsfig.yml up -d --wait
url="http://127.0.0.1:${WEB_PORT}/"
for _ in 1 2; do
  python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end="")' "$url"
done
cat >&2 <<MSG

The redis + app example is up at $url
  node bin/tsfig.js -f examples/redis-app/tsfig.yml ps        # status
  node bin/tsfig.js -f examples/redis-app/tsfig.yml logs -f   # logs
  node bin/tsfig.js -f examples/redis-app/tsfig.yml down      # stop and remove it
MSG
