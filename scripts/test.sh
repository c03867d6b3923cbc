#!/usr/bin/env bash
# Sets up .venv (if needed) with vaetune and its dev extras, then runs the whole test suite (CI).
# Usage: bash scripts/test.sh [pytest args...]; the quick tier: bash scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# the browser checks (HTML report, MLflow UI, Optuna Dashboard) use headless Chromium (Debian's
# package); without it they are skipped, or fail where CI is set (tests/browser.py)
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if ! (apt-get update -qq && apt-get install -y -qq chromium >/dev/null); then
    if [ -n "${CI:-}" ]; then then_what="fail (CI is set)"; else then_what="be skipped"; fi
    echo "chromium could not be installed (apt-get install chromium): the browser checks will $then_what"
  fi
fi
set +e
# two processes, each test file whole in one of them (its module fixtures run once): a real
# search leaves a core idle much of the time (Ray starting, processes waiting on each other)
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
code=$?
set -e
if [ "$code" = 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
exit "$code"
