#!/usr/bin/env bash
# The GPU checks, for a machine with a CUDA GPU (under 5 minutes on one): the `gpu` tests
# (tests/test_gpu.py and the cuda cases elsewhere: bf16 autocast in the loop, pinned-memory
# batches, a resumed bf16 run equal to an uninterrupted one, the GPU memory figures, FID on CUDA
# equal to the CPU's within 1e-3, four trials packed on one GPU), then `benchmarks/run.py --only
# gpu --quick`; prints one table of every check. On a machine without a GPU it says so, exit 0.
# Usage: bash scripts/gpu-check.sh   (sets up .venv as scripts/test.sh does; at most 170 s of tests
# and 100 s of benchmark, each cut off by `timeout`)
set -euo pipefail
cd "$(dirname "$0")/.."

gpus=0
if [ "${CUDA_VISIBLE_DEVICES-all}" != "" ] && [ "${CUDA_VISIBLE_DEVICES-all}" != "-1" ] &&
   command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU " || true)
fi
if [ "$gpus" = 0 ]; then
  echo "gpu-check: no GPU on this machine (nvidia-smi lists none, or CUDA_VISIBLE_DEVICES hides them): nothing to check"
  exit 0
fi

bash scripts/setup.sh dev
py=.venv/bin/python
if ! $py -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu-check: nvidia-smi lists $gpus GPU(s) but torch sees no CUDA device (a CPU build of torch?)" >&2
  exit 1
fi
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # deterministic cuBLAS: the resume test compares weights bit for bit
work=$(mktemp -d)
start=$SECONDS
set +e
timeout 170 $py -m pytest -m gpu -q -rs -p no:cacheprovider --junitxml "$work/gpu.xml" >"$work/tests.log" 2>&1
tests=$?
timeout 100 $py benchmarks/run.py --only gpu --quick --device cuda --out "$work/bench.csv" >"$work/bench.log" 2>&1
bench=$?
set -e

$py - "$work" "$tests" "$bench" "$((SECONDS - start))" <<'PY'
import csv, sys, xml.etree.ElementTree as ET
from pathlib import Path

work, tests, bench, seconds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = []
if (work / "gpu.xml").exists():
    for case in ET.parse(work / "gpu.xml").iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        skip = case.find("skipped")
        result = "FAILED" if bad is not None else "skipped" if skip is not None else "passed"
        why = (bad if bad is not None else skip).get("message", "") if result != "passed" else ""
        name = case.get("classname", "").rsplit(".", 1)[-1] + "::" + case.get("name", "")
        rows.append((name, result, f"{float(case.get('time', 0)):.1f} s {why[:60]}".strip()))
else:
    rows.append(("pytest -m gpu", f"exit {tests}", "no report: see the log"))
if (work / "bench.csv").exists():
    for r in csv.DictReader(open(work / "bench.csv")):
        if r["section"] == "gpu":
            rows.append((f"bench: {r['figure']}", "measured", f"ratio {float(r['ratio']):.2f} "
                         f"({float(r['a_value']):.4g} vs {float(r['b_value']):.4g} {r['unit']})"))
if bench:
    rows.append(("benchmarks/run.py --only gpu", f"exit {bench}", "see the log"))
width = max(len(r[0]) for r in rows)
print(f"\n{'check':<{width}}  {'result':<8}  detail")
for name, result, detail in rows:
    print(f"{name:<{width}}  {result:<8}  {detail}")
print(f"\n{seconds} s in all; logs in {work} (tests.log, bench.log, bench.csv)")
PY
[ "$tests" = 0 ] && [ "$bench" = 0 ]
