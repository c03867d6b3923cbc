"""The benchmark command runs end to end in its tiny mode and writes sane rows (no timed assertions)."""

from __future__ import annotations

import csv
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.slow
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


def _stand_in_emoji(folder: Path, n: int = 100) -> None:
    """An emoji-like collection written here (offline): RGBA discs on transparency, 64 px, in
    category sub-folders, as `vaetune data fetch emoji` lays out the npm package's images."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    for i in range(n):
        px = np.zeros((64, 64, 4), np.uint8)
        r = rng.integers(12, 30)
        px[(yy - 32) ** 2 + (xx - 32) ** 2 <= r * r] = (*rng.integers(0, 256, 3), 255)
        sub = folder / ("smileys_emotion", "animals_nature", "food_drink")[i % 3]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(px).save(sub / f"{i:04x}.png")


@pytest.mark.slow
def test_peers_smoke_measures_every_method_on_both_collections(tmp_path):
    peers = _module("bench_peers")
    _stand_in_emoji(tmp_path / "emoji")
    out = tmp_path / "results.csv"
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--only", "peers", "--out", str(out),
                           "--emoji", str(tmp_path / "emoji")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1800)  # eight Ray searches; a hang guard for a loaded machine
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["figure"]: r for r in csv.DictReader(out.open())}
    assert {r["section"] for r in rows.values()} == {"peers"}
    for c in ("sprites", "emoji"):
        for m in peers.METHODS:
            held = rows[peers.HELD.format(c=c, m=m)]
            # every method's incumbent was re-measured (inf: it had none) ...
            assert math.isfinite(float(held["a_value"])) and float(held["a_value"]) > 0, (c, m, proc.stdout[-3000:])
            # ... and none holds better than the best found, the least of all of them
            assert float(held["ratio"]) >= 1, (c, m)
        # the method that found the best got within 5 % of it
        assert any(math.isfinite(float(rows[peers.REACH.format(c=c, m=m)]["a_value"])) for m in peers.METHODS)
        assert f"| {c} | vaetune |" in proc.stdout  # the README's table


def test_peers_incumbents_are_measured_reports_with_a_checkpoint_within_the_budget(tmp_path):
    evaluator = _module("_evaluator")
    a, b = tmp_path / "exp" / "trial_a", tmp_path / "exp" / "trial_b"
    a.mkdir(parents=True)
    b.mkdir()
    # as Tune writes them: vaetune carries a FID between evaluations (eval/epoch says when it was
    # measured); NaN before the first; a trial stopped mid-write leaves a line cut short
    a.joinpath("result.json").write_text(
        '{"epoch": 1, "timestamp": 1010, "eval/fid_sample": 50.0, "eval/epoch": 1, "checkpoint_dir_name": "c0"}\n'
        '{"epoch": 2, "timestamp": 1020, "eval/fid_sample": 50.0, "eval/epoch": 1, "checkpoint_dir_name": "c1"}\n'
        '{"epoch": 3, "timestamp": 1030, "eval/fid_sample": 40.0, "eval/epoch": 3, "checkpoint_dir_name": null}\n'
        '{"epoch": 4, "timestamp": 1040, "eval/fid_sample": 40.0, "eval/epoch": 3, "checkpoint_dir_name": "c3"}\n'
        '{"epoch": 5, "timestamp": 1200, "eval/fid_sample": 10.0, "eval/epoch": 5, "checkpoint_dir_name": "c4"}\n')
    b.joinpath("result.json").write_text(
        '{"epoch": 1, "timestamp": 1015, "eval/fid_sample": NaN, "eval/epoch": NaN, "checkpoint_dir_name": "c0"}\n'
        '{"epoch": 2, "timestamp": 1025, "eval/fid_sample": 45.0, "eval/epoch": 2, "checkpoint_dir_name": "c1"}\n'
        '{"epoch": 3, "timest')
    # t0 1000, budget 150: a's epoch 5 (t = 200) is after it; its 40 was measured at epoch 3, which
    # has no checkpoint (epoch 4's model is not the one measured); so 50 (a, t = 10), 45 (b, t = 25)
    found = evaluator.incumbents(tmp_path / "exp", "eval/fid_sample", "min", 1000.0, 150.0)
    assert found == [(10.0, a / "c0"), (25.0, b / "c1")]
    assert evaluator.incumbents(tmp_path / "exp", "eval/fid_sample", "max", 1000.0, 150.0) == [(10.0, a / "c0")]
    # the peer script's reports: a FID measured every epoch, no eval/epoch
    a.joinpath("result.json").write_text('{"epoch": 1, "timestamp": 1005, "fid": 60.0, "checkpoint_dir_name": "c0"}\n')
    assert evaluator.incumbents(tmp_path / "exp", "fid", "min", 1000.0, 150.0) == [(5.0, a / "c0")]


def test_peers_figures_compare_seed_by_seed_against_the_best_any_method_found():
    peers = _module("bench_peers")
    inf = math.inf
    curves = {  # (seconds, the evaluator's FID) of each incumbent, two seeds per method
        "vaetune": [[(10, 105.0), (50, 100.0)], [(40, 130.0)]],
        "random+fifo": [[(30, 120.0)], [(60, 125.0)]],
        "peer script": [[], [(90, 104.0)]],
        "grid": [[(20, 104.0), (80, 110.0)], [(70, 140.0)]],
    }
    rows = {r["figure"]: r for r in peers.figures("c", curves, 100.0)}
    # best found 100 (vaetune seed 0), so within 5 % is <= 105: vaetune at 10 s and never;
    # random+fifo never; the peer script never and at 90 s; the grid at 20 s and never
    reach = rows[peers.REACH.format(c="c", m="grid")]  # 20 / 100 and never
    assert (reach["ratio_min"], reach["ratio_max"]) == (0.2, inf) and "1 of 2 seeds never" in reach["note"]
    assert rows[peers.VS_REACH.format(c="c", m="grid")]["ratio"] == 0.5  # 10 / 20; seed 1: neither, left out
    assert rows[peers.VS_REACH.format(c="c", m="random+fifo")]["ratio"] == 0  # only vaetune got there
    vs_peer = rows[peers.VS_REACH.format(c="c", m="peer script")]
    assert (vs_peer["ratio_min"], vs_peer["ratio_max"]) == (0, inf)  # seed 0: 10 / never; seed 1: never / 90
    # held at the budget: the last incumbent's FID
    held = rows[peers.VS_HELD.format(c="c", m="grid")]
    assert held["ratio_min"] == 100 / 110 and held["ratio_max"] == 130 / 140 and "lower in 2 of 2" in held["note"]
    assert "lower in 1 of 2" in rows[peers.VS_HELD.format(c="c", m="random+fifo")]["note"]  # 100 < 120, 130 > 125
    assert rows[peers.HELD.format(c="c", m="grid")]["ratio_max"] == 1.4  # 140 / 100


def test_the_peer_script_uses_no_vaetune_code():
    import ast

    tree = ast.parse((BENCH / "peer_script.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported and not [m for m in imported if m.split(".")[0] in ("vaetune", "_common", "_evaluator")]
