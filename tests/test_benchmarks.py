"""The benchmark command runs end to end in its tiny mode and writes sane rows (no timed assertions)."""

from __future__ import annotations

import csv
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def test_run_smoke_writes_ratio_rows(tmp_path):
    out = tmp_path / "results.csv"
    fields = _module("run").FIELDS + ["mode", "machine"]
    earlier = {**dict.fromkeys(fields, "2"), "section": "search", "figure": "from an earlier full run", "mode": "full"}
    with open(out, "w", newline="") as f:  # a section the smoke run skips: its rows must survive
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerow(earlier)
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert [r for r in rows if r["section"] == "search"] == [earlier]
    rows = [r for r in rows if r["section"] != "search"]
    figures = {r["figure"] for r in rows}
    assert {r["section"] for r in rows} == {"trainable", "data", "gpu"}
    assert "epochs/s (wall), train / bare loop" in figures
    assert "epochs/s (cpu), train / bare loop + val ELBO" in figures
    assert "data share of step time, vaetune cache" in figures
    assert any(f.startswith("start-up, cache hit,") for f in figures)
    assert "images/s, bf16 / fp32" in figures
    for r in rows:
        for key in ("ratio", "ratio_min", "ratio_max", "a_value", "b_value"):
            value = float(r[key])
            assert math.isfinite(value) and value > 0, (r["figure"], key, r[key])
        assert float(r["ratio_min"]) <= float(r["ratio"]) <= float(r["ratio_max"])
        assert r["machine"] and r["mode"] == "smoke"
    assert "epochs/s (wall), train / bare loop" in proc.stdout  # the table


def test_interleave_rotates_order_and_ratio_row_uses_paired_ratios():
    common = _module("_common")
    calls = []
    out = common.interleave({"a": lambda: calls.append("a") or 2.0, "b": lambda: calls.append("b") or 1.0}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    row = common.ratio_row("s", "f", "a", [2.0, 4.0, 3.0], "b", [1.0, 1.0, 3.0])
    assert row["ratio"] == 2.0 and row["ratio_min"] == 1.0 and row["ratio_max"] == 4.0
    assert out["a"] == [2.0] * 3


def test_search_curves_budget_and_best_at_budget():
    search = _module("bench_search")
    grid = search.best_curve([(1, 1, 10.0), (2, 1, 8.0), (3, 2, 9.0), (4, 2, 5.0)])
    assert grid == [(1, 10.0), (2, 8.0), (3, 8.0), (4, 5.0)]
    fast = search.best_curve([(1, 1, 5.2), (2, 1, 7.0)])
    never = search.best_curve([(1, 1, 9.0)])
    assert search.budget_to_reach(grid, 5.25) == 4 and search.budget_to_reach(fast, 5.25) == 1
    assert math.isinf(search.budget_to_reach(never, 5.25))
    rows = {r["figure"]: r for r in search.figures({"grid": [grid], "asha+tpe": [fast], "fifo+random": [never]})}
    assert rows["epochs to within 5% of grid best, asha+tpe / grid"]["ratio"] == 0.25
    assert math.isinf(rows["epochs to within 5% of grid best, fifo+random / grid"]["ratio"])
    assert rows["best eval/fid_sample at the grid's budget, asha+tpe / grid best"]["ratio"] == 5.2 / 5.0


def test_search_reports_read_nan_placeholders_as_not_yet_measured(tmp_path):
    search = _module("bench_search")
    trial = tmp_path / "exp" / "trial_0"
    trial.mkdir(parents=True)
    # as Tune writes them: the epochs before a trial's first FID carry NaN
    trial.joinpath("result.json").write_text(
        '{"timestamp": 1, "epoch": 1, "eval/fid_sample": NaN}\n{"timestamp": 2, "epoch": 2, "eval/fid_sample": 80.5}\n')
    rows = search.reports(tmp_path / "exp")
    assert [r[1:] for r in rows] == [(1, math.inf), (2, 80.5)]
    assert search.best_curve(rows) == [(1, math.inf), (2, 80.5)]


def test_run_replaces_a_csv_of_another_layout_whole(tmp_path):
    run = _module("run")
    out = tmp_path / "results.csv"
    out.write_text("something,else\n1,2\n")
    assert run._kept_rows(out, {"data"}) == []  # another layout is replaced whole
    assert run._kept_rows(tmp_path / "missing.csv", {"data"}) == []
