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
def test_peers_smoke_measures_every_method_on_a_real_collection(tmp_path):
    peers = _module("bench_peers")
    first = peers.COLLECTION_NAMES[0]
    _stand_in_emoji(tmp_path / "data" / first)  # where the fetch would put it: nothing is fetched
    out = tmp_path / "results.csv"
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--only", "peers", "--out", str(out),
                           "--data", str(tmp_path / "data")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1800)  # five runs, three of them Ray searches; a hang guard for a loaded machine
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["figure"]: r for r in csv.DictReader(out.open())}
    assert {r["section"] for r in rows.values()} == {"peers"}
    for m in peers.METHODS:
        for figure in (peers.HANDED, peers.NORMAL):
            held = rows[figure.format(c=first, m=m)]
            # every method held a model at the budget, and the evaluator measured it (inf: none)
            assert math.isfinite(float(held["a_value"])) and float(held["a_value"]) > 0, (m, proc.stdout[-3000:])
    # a vaetune run hands out its fitted mixture: measured apart from its N(0, I) samples; the
    # others hand out N(0, I), the same measure twice
    for m in peers.METHODS:
        handed, normal = (float(rows[f.format(c=first, m=m)]["a_value"]) for f in (peers.HANDED, peers.NORMAL))
        assert (handed != normal) == (m in peers.VAETUNE_RUNS), m
    assert rows[peers.VS_DEFAULT.format(c=first)]["goal"] == "<= 0.65"
    assert f"| {first} | vaetune |" in proc.stdout  # the README's table
    kept = BENCH / "results_peers.csv"
    assert not kept.is_file() or ",smoke," not in kept.read_text()  # a smoke run's rows are kept nowhere


def test_peers_default_model_holds_its_last_epoch_saved_within_the_budget(tmp_path):
    peers = _module("bench_peers")
    log = tmp_path / "log.txt"
    log.write_text("\n".join([
        '{"epoch": 1, "timestamp": 1040.0, "checkpoint": "m/epoch_0001"}',
        '{"epoch": 2, "timestamp": 1090.0, "checkpoint": "m/epoch_0002"}',
        '{"epoch": 3, "timestamp": 1130.0, "checkpoint": "m/epoch_0003"}', "stopped"]))
    assert peers.default_held(log, 1000.0, 100.0) == (90.0, Path("m/epoch_0002"))
    assert peers.default_held(log, 1000.0, 30.0) is None  # no epoch saved by then: no model
    assert peers.default_held(tmp_path / "none.txt", 1000.0, 100.0) is None


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


def test_peers_figures_compare_seed_by_seed_what_each_method_hands_out():
    peers = _module("bench_peers")
    inf = math.inf
    H = peers.Held
    held = {  # two seeds per method: (handed out, N(0, I))
        "vaetune": [H("vaetune", 0, 100, 60.0, 90.0), H("vaetune", 1, 100, 80.0, 100.0)],
        "default model": [H("default model", 0, 100, 100.0, 100.0), H("default model", 1, 100, 120.0, 120.0)],
        "grid": [H("grid", 0, 100, 50.0, 95.0), H("grid", 1, 0, inf, inf)],  # seed 1 held no model
    }
    rows = {r["figure"]: r for r in peers.figures("c", held)}
    vs = rows[peers.VS_NORMAL.format(c="c", m="default model")]  # 90 / 100 and 100 / 120
    assert (vs["ratio_min"], vs["ratio_max"]) == (100 / 120, 0.9) and vs["goal"] == "<= 0.80"
    assert "lower in 2 of 2" in vs["note"]
    vs = rows[peers.VS_DEFAULT.format(c="c")]  # vaetune's mixture against the default's N(0, I): 60 / 100, 80 / 120
    assert (vs["ratio_min"], vs["ratio_max"]) == (0.6, 80 / 120) and vs["goal"] == "<= 0.65"
    vs = rows[peers.VS_HANDED.format(c="c", m="grid")]  # 60 / 50; the grid's seed 1 held nothing: 0
    assert (vs["ratio_min"], vs["ratio_max"]) == (0, 1.2) and "lower in 1 of 2" in vs["note"]
    assert peers.VS_DEFAULT.format(c="c") not in {r["figure"] for r in peers.figures("c", {k: held[k] for k in
                                                                                       ("vaetune", "grid")})}
    table = peers.markdown(list(rows.values()), ["c"])
    assert "| c | vaetune | 70.0 (60.0..80.0) | 95.0 (90.0..100.0) |" in table
    assert "| c | vaetune as handed out / default model's N(0, I) | | | 0.63 (0.60..0.67) | |" in table


@pytest.mark.parametrize("script", ["peer_script.py", "default_model.py"])
def test_the_peers_scripts_use_no_vaetune_code(script):
    import ast

    tree = ast.parse((BENCH / script).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported and not [m for m in imported if m.split(".")[0] in ("vaetune", "_common", "_evaluator")]


def test_rungs_rho_ranks_each_candidate_against_the_judge_within_a_collection():
    rungs = _module("bench_rungs")

    def r(collection, trial, measure, value, sampler="gmm", n=64, epoch=2, seconds=4.0):
        return {"collection": collection, "trial": str(trial), "epoch": str(epoch), "measure": measure,
                "sampler": sampler, "n": str(n), "value": str(value), "seconds": str(seconds)}

    judge = rungs.JUDGE
    rows = [r("a", i, judge, v, epoch=15, seconds="") for i, v in enumerate([10, 20, 30, 40])]
    rows += [r("b", i, judge, v, epoch=15, seconds="") for i, v in enumerate([40, 30, 20, 10])]
    # FID at the rung: the judge's order in a (rho 1), reversed in b (rho -1) -> median 0
    rows += [r("a", i, "fid", v) for i, v in enumerate([1, 2, 3, 4])]
    rows += [r("b", i, "fid", v) for i, v in enumerate([1, 2, 3, 4])]
    # KID at the rung: the judge's order in both (rho 1), one trial's value not finite: left out
    rows += [r("a", i, "kid", v, seconds=2.0) for i, v in enumerate([5, 6, 7, 8])]
    rows += [r("b", i, "kid", v, seconds=6.0) for i, v in enumerate([9, 8, 7, "nan"])]
    table = {t["measure"]: t for t in rungs.analyse(rows, "gmm")}
    assert (table["fid"]["rho"], table["fid"]["rho_min"], table["fid"]["rho_max"]) == (0.0, -1.0, 1.0)
    assert table["kid"]["rho"] == 1.0 and table["kid"]["trials"] == 7
    assert table["kid"]["seconds"] == 2.0  # the median of 2, 2, 2, 2, 6, 6, 6
    assert table["kid"]["rho_per_s"] == 0.5
    assert rungs.analyse(rows, "normal") == []  # no judge of N(0, I) samples: nothing to rank against


def test_losses_table_takes_each_losss_best_beta_by_its_mean_over_seeds():
    losses = _module("bench_losses")
    rows = [{"collection": "c", "recon_loss": loss, "beta": beta, "sampler": "gmm", "fid": fid}
            for loss, beta, fid in [("mse", 0.01, 100), ("mse", 0.01, 140), ("mse", 0.1, 110), ("mse", 0.1, 120),
                                    ("calibrated", 1.0, 90), ("calibrated", 1.0, 95), ("calibrated", 10.0, "inf"),
                                    ("calibrated", 10.0, 80)]]
    t = {r["recon_loss"]: r for r in losses.table(rows)}
    assert (t["mse"]["best_beta"], t["mse"]["fid"], t["mse"]["fids"]) == (0.1, 115.0, [110.0, 120.0])
    # a diverged seed (inf) makes its beta's mean inf: the other beta is best
    assert (t["calibrated"]["best_beta"], t["calibrated"]["fid"]) == (1.0, 92.5)
    assert "| c | gmm | calibrated | 1 | 92.5 (90.0, 95.0) |" in losses.markdown(list(t.values()))


def test_portfolio_is_chosen_greedily_by_the_regret_summed_over_collections():
    portfolio = _module("bench_portfolio")
    judge = _module("bench_rungs").JUDGE

    def r(collection, trial, value):
        return {"collection": collection, "trial": str(trial), "epoch": "10", "measure": judge, "sampler": "gmm",
                "n": "100", "value": str(value), "beta": "0.1", "lr": "0.001", "latent_dim": "16", "width": "32",
                "warmup_epochs": "1"}

    # trial 0 is good everywhere but best nowhere; 1 is best on a, 2 best on b and c; 3 failed on c
    fids = {"a": [110, 100, 200, 150], "b": [105, 300, 100, 150], "c": [120, 200, 100, "nan"]}
    rows = [r(c, t, v) for c, vs in fids.items() for t, v in enumerate(vs)]
    rows.append({**r("a", 0, 1.0), "sampler": "normal"})  # another sampler's judge: not this table's
    table, configs = portfolio.fid_table(rows)
    assert table["c"][3] == math.inf and set(configs) == {0, 1, 2, 3}
    regret = portfolio.regrets(table)
    # relative regret; the failed trial gets c's worst finite FID (200): 200/100 - 1
    assert regret["a"][0] == pytest.approx(0.1) and regret["c"][3] == pytest.approx(1.0)
    # by hand: alone, trial 0 sums 0.1 + 0.05 + 0.2 = 0.35, trial 2 sums 1 + 0 + 0 = 1: 0 first;
    # then 0+1 sums 0 + 0.05 + 0.2 = 0.25 and 0+2 sums 0.1 + 0 + 0 = 0.1: 2; then 1 brings a to 0
    assert portfolio.greedy(regret, 4) == [(0, pytest.approx(0.35)), (2, pytest.approx(0.1)), (1, 0.0),
                                           (3, 0.0)]


def test_expected_best_of_random_configurations_is_the_mean_over_every_draw():
    import itertools
    import statistics

    portfolio = _module("bench_portfolio")
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 9.0]
    for k in (1, 2, 3, 6):
        every = [min(c) for c in itertools.combinations(values, k)]
        assert portfolio.expected_best_of_random(values, k) == pytest.approx(statistics.mean(every))


def test_portfolio_loo_table_holds_each_methods_best_and_the_trials_to_within_5_percent():
    loo = _module("bench_portfolio_loo")

    def r(method, seed, fids):
        return [{"collection": "c", "method": method, "seed": str(seed), "k": str(k), "fid": str(v)}
                for k, v in enumerate(fids, 1)]

    # two seeds, 8 trials: the best any method found on c is 100 (the portfolio, seed 0, after 3 trials)
    rows = (r("portfolio", 0, [130, 120, 100, 100, 100, 100, 100, 100]) + r("portfolio", 1, [150] * 7 + [104])
            + r("no portfolio", 0, [200, 140, 140, 110, 110, 110, 110, 103])
            + r("no portfolio", 1, [180] * 8)
            + r("optuna tpe", 0, [200] * 8) + r("optuna tpe", 1, ["inf"] + [120] * 7))
    t = {(x["k"], x["method"]): x for x in loo.table_rows(rows, (8,))}
    p, n, o = t[(8, "portfolio")], t[(8, "no portfolio")], t[(8, "optuna tpe")]
    assert (p["mean"], p["min"], p["max"]) == (102.0, 100.0, 104.0)
    # within 5 % of 100: at most 105; the portfolio got there at trial 3 and 8, no portfolio at 8 in seed 0 only
    assert p["needed"] == [3, 8] and n["needed"] == [8, None] and o["needed"] == [None, None]
    # seed 0: 100 < 103 and < 200; seed 1: 104 < 180 and < 120
    assert p["portfolio_wins"] == 2 and o["mean"] == 160.0
    assert "| c | 8 | portfolio | 102.0 (100.0..104.0) | 2 | 3, 8 | 2 |" in loo.markdown(list(t.values()))
