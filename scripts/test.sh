#!/usr/bin/env bash
# Sets up .venv (if needed) with vaetune and its dev extras, then runs the whole test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# the HTML report test renders pages in headless Chromium (Debian's package)
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed; the HTML check will be skipped"
fi
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" = 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
exit "$code"
