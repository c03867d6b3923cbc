#!/usr/bin/env bash
# Sets up .venv (if needed) and runs the quick-start search on the built-in sprites, offline.
# Usage: bash scripts/demo.sh [extra vaetune search args, e.g. --resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vaetune search search_spaces/sprites.yaml "$@"
