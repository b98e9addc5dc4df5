#!/usr/bin/env bash
# ./run.sh demo   set up (idempotent) and run `quartet demo`
# ./run.sh test   set up (idempotent) and run the test suite (long end-to-end tests: ./run.sh test -m slow)
set -euo pipefail
cd "$(dirname "$0")"
cmd=${1:-}
shift || true
case "$cmd" in
  demo) bash scripts/setup.sh && exec .venv/bin/quartet demo "$@" ;;
  test) bash scripts/setup.sh && exec .venv/bin/python -m pytest -q -m "not slow" "$@" ;;
  *) echo "usage: ./run.sh demo|test [args]" >&2; exit 2 ;;
esac
