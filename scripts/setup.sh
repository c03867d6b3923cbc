#!/usr/bin/env bash
# Creates .venv and installs vaetune into it (editable). Usage: bash scripts/setup.sh [dev]
# A failed install fails the setup with pip's own message: a stale .venv never runs on silently.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=${1:-}
[ -x .venv/bin/python ] || python3 -m venv .venv
spec="."
[ -n "$extra" ] && spec=".[$extra]"
# pip's "WARNING: Location ..." lines (a user site beside the venv) are noise: left out
quiet() { grep -v "^WARNING: Location" || true; }
if ! out=$(.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" 2>&1); then
  printf '%s\n' "$out" | quiet >&2
  echo "setup failed: pip install -e '$spec' into .venv did not succeed (its output above)" >&2
  exit 1
fi
printf '%s\n' "$out" | quiet
.venv/bin/python -c "import vaetune, torch, torchvision" || { echo "setup failed: see pip output above" >&2; exit 1; }
