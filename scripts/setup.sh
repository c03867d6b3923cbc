#!/usr/bin/env bash
# Creates .venv and installs vaetune into it (editable). Usage: bash scripts/setup.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
extra=${1:-}
[ -x .venv/bin/python ] || python3 -m venv .venv
spec="."
[ -n "$extra" ] && spec=".[$extra]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import vaetune, torch, torchvision" || { echo "setup failed: see pip output above"; exit 1; }
