#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up (idempotent), typecheck, lint, format check,
# the C build with warnings as errors, unit tests and, as root, integration tests with real containers.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  bash scripts/setup.sh --deps
fi

scratch=$(mktemp -d)
conformance=
# The conformance harness cleans up on SIGTERM; wait for it so that nothing of it outlives this script.
# Static checks still running (after a failed build) are waited for too (a minute at most): nothing outlives this.
static=()
trap 'if [ -n "$conformance" ]; then kill -TERM "$conformance" 2>/dev/null; wait "$conformance" 2>/dev/null; fi; for pid in "${static[@]}"; do wait "$pid" 2>/dev/null; done; rm -rf "$scratch"' EXIT

# The static checks do not depend on each other nor gate the tests: they run side by side, each into its own log, beside
# the build and the tests, and are waited for at the end (their log is shown when one fails). The C build (warnings
# are errors) runs first, alone: the tests need its binary.
checks=(typecheck lint deps format)
describe() {
  case "$1" in
    typecheck) echo "typecheck" ;;
    lint) echo "lint" ;;
    deps) echo "dependency rules (layers, cycles: .dependency-cruiser.cjs)" ;;
    format) echo "format" ;;
  esac
}
check() {
  case "$1" in
    typecheck) npx tsc --noEmit ;;
    lint) npx eslint . ;;
    deps) npm run -s lint:deps ;;
    format) npx prettier --check . ;;
  esac
}
echo "== native (warnings are errors)" >&2
make -s -C native clean && make -s -C native
echo "== ${checks[*]} (side by side, beside the tests; reported at the end)" >&2
for name in "${checks[@]}"; do
  (
    status=0
    check "$name" >"$scratch/$name.log" 2>&1 || status=$?
    echo "$status" >"$scratch/$name.status"
  ) &
  static+=($!)
done
echo "== build" >&2; npx tsc -p tsconfig.build.json && node scripts/bundle.js
echo "== install (npm pack + npm install -g in a scratch prefix)" >&2; bash scripts/test-install.sh --built

# lint-rules.test writes probe files that break the import rules into src/ and engine/ for a moment: it runs after the
# static checks, with the tests that need the host to themselves.
files=()
for file in test/unit/*.test.ts; do
  [ "$file" = test/unit/lint-rules.test.ts ] || files+=("$file")
done
# Run after the conformance scenarios, alone: network.test sets the host's firewall to Docker's (FORWARD policy DROP,
# a DOCKER-USER chain, br_netfilter), which other tsfig networks would see, and zz-no-leaks checks that nothing of
# any test or scenario is left.
last=(test/unit/lint-rules.test.ts)
if [ "$(id -u)" = 0 ]; then
  # test/security performs the attacks of issue #15; test/chaos the short kill -9 run of issue #20 (2 up/down cycles,
  # one kill of each operation; the long soak is `npm run chaos`).
  for file in test/integration/*.test.ts; do
    case "$file" in test/integration/network.test.ts | test/integration/zz-no-leaks.test.ts) continue ;; esac
    files+=("$file")
  done
  files+=(test/security/*.test.ts test/chaos/*.test.ts)
  last+=(test/integration/network.test.ts test/integration/zz-no-leaks.test.ts)
else
  echo "not root: integration tests are skipped (run as root to include them)" >&2
fi
# Nothing a test does may leave the machine: the embedded resolver refuses outside names and registries must be on
# loopback (tests run their own registry on 127.0.0.1).
export TSFIG_DNS_FORWARD=0 TSFIG_REGISTRY_LOOPBACK_ONLY=1
status=0
if [ "$(id -u)" = 0 ]; then
  # Compose conformance (test/conformance): tsfig against the observations docker-compose recorded. The scenarios
  # keep both cores busy while the node tests mostly wait on containers, so they run side by side; each scenario has
  # its own state root, and the tests check only what their own roots made.
  echo "== conformance (beside the tests; its output follows them)" >&2
  node --import tsx test/conformance/run.ts --no-report --skip-known --jobs 2 >"$scratch/conformance.log" 2>&1 &
  conformance=$!
fi
echo "== tests" >&2
node --import tsx --test --test-reporter=tap --test-concurrency=2 "${files[@]}" | tee "$scratch/tests.log" || status=$?
if [ -n "$conformance" ]; then
  conformance_status=0
  wait "$conformance" || conformance_status=$?
  echo "== conformance" >&2
  cat "$scratch/conformance.log"
  [ "$conformance_status" = 0 ] || status=$conformance_status
  conformance=
fi
wait "${static[@]}"
static=()
for name in "${checks[@]}"; do
  if [ "$(cat "$scratch/$name.status")" = 0 ]; then
    echo "== $(describe "$name"): ok" >&2
  else
    echo "== $(describe "$name"): FAILED" >&2
    cat "$scratch/$name.log" >&2
    status=1
  fi
done
echo "== tests that need the host (or the tree) to themselves" >&2
node --import tsx --test --test-reporter=tap --test-concurrency=1 "${last[@]}" | tee "$scratch/last.log" || status=$?
if [ "$(id -u)" = 0 ]; then
  # As root every integration test must run: a skip there means a missing package or a broken set-up.
  skipped=0
  for log in "$scratch/tests.log" "$scratch/last.log"; do
    n=$(sed -n 's/^# skipped \([0-9][0-9]*\)$/\1/p' "$log" | tail -n 1)
    skipped=$((skipped + ${n:-0}))
  done
  if [ "$skipped" != 0 ]; then
    echo "error: $skipped test(s) skipped while running as root; every test must run here" >&2
    grep -hE '# SKIP' "$scratch/tests.log" "$scratch/last.log" >&2 || true
    exit 1
  fi
fi
exit "$status"
