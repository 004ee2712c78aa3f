#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up (idempotent), typecheck, lint, format check,
# the C build with warnings as errors, unit tests and, as root, integration tests with real containers.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  bash scripts/setup.sh --deps
fi

echo "== typecheck" >&2; npx tsc --noEmit
echo "== lint" >&2; npx eslint .
echo "== format" >&2; npx prettier --check . >/dev/null
echo "== native (warnings are errors)" >&2; make -s -C native clean && make -s -C native
echo "== build" >&2; npx tsc -p tsconfig.build.json

files=(test/unit/*.test.ts)
if [ "$(id -u)" = 0 ]; then
  files+=(test/integration/*.test.ts)
else
  echo "not root: integration tests are skipped (run as root to include them)" >&2
fi
echo "== tests" >&2
exec node --import tsx --test --test-concurrency=1 "${files[@]}"
