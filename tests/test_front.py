"""Quality against coherence as a Pareto front: a two-objective search of the sprites (val/mse
against the FID of samples) with a floor on the KL, run through the CLI as a user runs it,
stopped by Ctrl-C at its first completed trial and resumed; then its front in summary.csv, in
Optuna's study, on the console, in MLflow's tags, in `vaetune export --pareto` and in the report.

Every front here is checked against one worked out in this file from summary.csv's own columns
by another method than vaetune's (sort by the first objective, sweep keeping the running best of
the second); feasibility against the floor read straight from final/val/kl. One start point sits
at β = 10, where two epochs leave the posterior collapsed (KL well below the floor: 0.1-0.6 nats
here, against 8-10 at β = 0.01), so the search holds at least one infeasible trial.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from guards import HANG_GUARD_S
from hold import read_to_first_completion, trial_epochs
from mlflow.tracking import MlflowClient
from test_search import Env

from vaetune.ranking import (
    MISSING_VIOLATION,
    dominates,
    feasible,
    front_table,
    non_dominated,
    violations,
)

NAME = "front"
FLOOR = 3.0  # nats per image: val/kl below it breaks the constraint
TRIALS = 5
OBJECTIVES = [("val/mse", "min"), ("eval/fid_sample", "min")]


def front_space(cache: Path) -> dict:
    return {
        "name": NAME,
        "data": {"source": "builtin:sprites", "image_size": 16, "count": 600, "cache_dir": str(cache)},
        "model": {"arch": "conv", "width": 8, "latent_dim": {"choice": [2, 4]}},
        "train": {"epochs": 2, "batch_size": 64, "lr": 0.003, "beta": {"loguniform": [0.01, 10.0]},
                  "num_threads": 1, "grid_size": 4, "fid_every": 2, "fid_samples": 8,
                  "prior": "none"},  # no objective reads the fitted prior: its FIDs would only cost time
        "search": {"metrics": [m for m, _ in OBJECTIVES], "constraints": {"val/kl": {"min": FLOOR}},
                   "num_samples": TRIALS, "max_concurrent": 2,
                   "points_to_evaluate": [{"train.beta": 0.01, "model.latent_dim": 4},
                                          {"train.beta": 10.0, "model.latent_dim": 2}]},
    }


class Front:
    def __init__(self, env: Env, stopped_out: str, resumed: subprocess.CompletedProcess):
        self.env, self.stopped_out, self.resumed = env, stopped_out, resumed
        self.results = env.tmp / "results" / NAME
        self.summary = pd.read_csv(self.results / "summary.csv", dtype={"trial_id": str})


@pytest.fixture(scope="module")
def front(tmp_path_factory) -> Front:
    env = Env(tmp_path_factory.mktemp("front"))
    try:
        path = env.write(front_space(env.tmp / "cache"))
        with (env.tmp / "driver.err").open("w") as err:
            driver = subprocess.Popen(env.cmd("search", str(path)), cwd=env.tmp, env=env.env, stdout=subprocess.PIPE,
                                      stderr=err, text=True, start_new_session=True)
        out = read_to_first_completion(driver)
        os.killpg(driver.pid, signal.SIGINT)  # a terminal's Ctrl-C
        out += driver.communicate(timeout=HANG_GUARD_S)[0]
        said = out + (env.tmp / "driver.err").read_text()
        if driver.returncode == 0:  # every trial ended before the interrupt reached it: nothing to resume
            pytest.fail("the search ended before Ctrl-C reached it:\n" + said[-3000:])
        assert driver.returncode == 130, said[-3000:]
        resumed = env.run("search", str(path), "--resume")
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        yield Front(env, out, resumed)
    finally:
        env.cleanup()


def by_hand(summary: pd.DataFrame) -> set[str]:
    """The front of OBJECTIVES (both minimised) among the completed trials with val/kl >= FLOOR:
    sorted by the first objective (ties: the second), a trial is on it when its second objective
    beats every earlier trial's."""
    ok = summary[(summary["status"] == "completed") & (summary["final/val/kl"] >= FLOOR)]
    ok = ok.dropna(subset=["final/val/mse", "final/eval/fid_sample"])
    ordered = ok.sort_values(["final/val/mse", "final/eval/fid_sample"])
    front, best_b, best_a = set(), float("inf"), None
    for _, row in ordered.iterrows():
        a, b = row["final/val/mse"], row["final/eval/fid_sample"]
        if b < best_b or (a == best_a and b == best_b):
            front.add(row["trial_id"])
            best_b, best_a = min(b, best_b), a
    return front


# ---------------------------------------------------------------------------------------------
# the ranking itself, on hand-made tables


def test_non_dominated_on_a_hand_made_table():
    # (a, b) both minimised: p1 (1, 5), p2 (2, 3), p3 (3, 1) trade off; p4 (3, 4) is beaten by p2
    # on both; p5 (1, 5) ties p1 (neither beats the other); p6 has no b; p7 (0.5, 9) is eligible
    # only when `among` lets it in
    t = pd.DataFrame({"a": [1, 2, 3, 3, 1, 0.5, 0.5], "b": [5, 3, 1, 4, 5, None, 9]},
                     index=["p1", "p2", "p3", "p4", "p5", "p6", "p7"])
    among = pd.Series([True, True, True, True, True, True, False], index=t.index)
    got = non_dominated(t, [("a", "min"), ("b", "min")], among=among)
    assert set(t.index[got]) == {"p1", "p2", "p3", "p5"}
    assert set(t.index[non_dominated(t, [("a", "min"), ("b", "min")])]) == {"p1", "p2", "p3", "p5", "p7"}
    # b maximised instead: p7 has the lowest a (0.5) and the highest b (9), so it beats every other
    got = non_dominated(t, [("a", "min"), ("b", "max")])
    assert set(t.index[got]) == {"p7"}
    # without p7, b maximised: p1 and p5 (1, 5) beat p2 (2, 3), p3 (3, 1) and p4 (3, 4)
    got = non_dominated(t, [("a", "min"), ("b", "max")], among=among)
    assert set(t.index[got]) == {"p1", "p5"}


def test_dominates_reads_each_objective_in_its_own_direction():
    assert dominates([1, 5], [2, 5], ["min", "min"]) and not dominates([2, 5], [1, 5], ["min", "min"])
    assert dominates([1, 5], [1, 4], ["min", "max"]) and not dominates([1, 4], [1, 5], ["min", "max"])
    assert not dominates([1, 5], [1, 5], ["min", "min"])  # equal: neither


def test_violations_are_distances_outside_the_bounds():
    bounds = {"val/kl": {"min": 5.0, "max": 20.0}, "val/active_units": {"min": 2.0}}
    assert violations({"val/kl": 7.0, "val/active_units": 3}, bounds) == [0.0, 0.0, 0.0]
    assert violations({"val/kl": 4.0, "val/active_units": 0}, bounds) == [1.0, 0.0, 2.0]
    assert violations({"val/kl": 25.0, "val/active_units": 2}, bounds) == [0.0, 5.0, 0.0]
    # a value never reported, or not a number, breaks its bound: never feasible by omission
    assert violations({"val/kl": float("nan")}, bounds) == [5.0, 20.0, 2.0]
    assert violations({}, {"val/kl": {"max": 0.5}}) == [MISSING_VIOLATION]
    t = pd.DataFrame({"final/val/kl": [7.0, 4.0, None]})
    assert list(feasible(t, {"val/kl": {"min": 5.0}}, lambda m: f"final/{m}")) == [True, False, False]


def test_the_front_table_lists_the_marked_members_best_first_and_counts_the_rest():
    s = pd.DataFrame({
        "trial_id": ["a", "b", "c", "d"], "status": ["completed", "completed", "completed", "stopped"],
        "final/val/mse": [0.02, 0.01, 0.03, 0.001], "final/eval/fid_sample": [150.0, 180.0, 100.0, 90.0],
        "final/val/kl": [9.0, 12.0, 1.0, 20.0], "feasible": [True, True, False, True],
        "pareto": [True, True, False, False]})
    table = front_table(s, OBJECTIVES, {"val/kl": {"min": 5.0}})
    assert table.members == ["b", "a"]  # by val/mse, lowest first
    head = table.text.splitlines()[0]
    assert "2 trials, of the 3 that ran every epoch, 1 of which broke val/kl >= 5" in head
    empty = front_table(s.assign(pareto=False, status="stopped"), OBJECTIVES, {})
    assert empty.members == [] and "none ran every epoch" in empty.text


# ---------------------------------------------------------------------------------------------
# the search


@pytest.mark.slow
def test_the_search_stopped_by_ctrl_c_resumed_to_every_trial(front):
    assert "search interrupted with " in front.stopped_out
    s = front.summary
    assert len(s) == TRIALS and (s["status"] == "completed").all(), s[["trial_id", "status"]]
    epochs = trial_epochs(front.results)
    assert all(e[-1] == 2 and e.count(1) == 1 for e in epochs.values()), epochs  # none ran twice from scratch


@pytest.mark.slow
def test_summary_marks_the_front_an_independent_computation_finds(front):
    s = front.summary
    assert set(s["feasible"]) <= {True, False}
    assert list(s["feasible"]) == [kl >= FLOOR for kl in s["final/val/kl"]]
    assert (~s["feasible"]).any() and s["feasible"].any(), s[["train.beta", "final/val/kl"]]
    expected = by_hand(s)
    assert expected and set(s.loc[s["pareto"], "trial_id"]) == expected
    assert not (s["pareto"] & ~s["feasible"]).any()  # an infeasible trial is never on it


@pytest.mark.slow
def test_the_front_is_optunas_own_with_the_constraints(front):
    """Optuna's study was told each trial's constraint (floor - KL, at most 0 when held), and its
    own Pareto front, which applies them, is the summary's."""
    study = optuna.load_study(study_name=NAME, storage=f"sqlite:///{front.results / 'optuna.db'}")
    assert len(study.directions) == 2
    # a trial the stopped driver asked for after its last snapshot is FAIL, and another runs in its place
    by_tune = {t.user_attrs["tune_trial_id"]: t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    s = front.summary.set_index("trial_id")
    assert set(by_tune) == set(s.index)
    for trial_id, t in by_tune.items():
        (value,) = t.constraints.values()
        assert value == pytest.approx(max(0.0, FLOOR - s.loc[trial_id, "final/val/kl"]), abs=1e-6)
        assert t.values == pytest.approx([s.loc[trial_id, "final/val/mse"], s.loc[trial_id, "final/eval/fid_sample"]])
    optuna_front = {t.user_attrs["tune_trial_id"] for t in study.best_trials}
    assert optuna_front == set(s.index[s["pareto"]])


@pytest.mark.slow
def test_search_json_records_the_objectives_and_constraints(front):
    state = json.loads((front.results / "search.json").read_text())
    assert state["metrics"] == ["val/mse", "eval/fid_sample"] and state["modes"] == ["min", "min"]
    assert state["constraints"] == {"val/kl": {"min": FLOOR}}


@pytest.mark.slow
def test_the_console_prints_the_front(front):
    out = front.resumed.stdout
    first = next(line for line in (front.stopped_out.splitlines()) if line.startswith("search front:"))
    assert "objectives val/mse (min) and eval/fid_sample (min)" in first and "val/kl >= 3" in first
    assert "Pareto front at the last epoch" in out
    members = set(front.summary.loc[front.summary["pareto"], "trial_id"])
    table = out[out.index("Pareto front at the last epoch"):out.index("best trial")]
    assert {t for t in front.summary["trial_id"] if t in table} == members


@pytest.mark.slow
def test_mlflow_tags_the_front_and_the_feasible(front):
    client = MlflowClient(f"sqlite:///{front.env.tmp / 'mlflow.db'}")
    exp = client.get_experiment_by_name(NAME)
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`vaetune.pareto` = 'true'")
    s = front.summary
    assert {r.info.run_id for r in runs} == set(s.loc[s["pareto"], "mlflow_run_id"])
    broke = client.search_runs([exp.experiment_id], filter_string="tags.`vaetune.feasible` = 'false'")
    assert {r.info.run_id for r in broke} == set(s.loc[~s["feasible"], "mlflow_run_id"])


@pytest.mark.slow
def test_export_lists_the_front_and_exports_any_trial(front):
    listed = front.env.here("export", f"results/{NAME}", "--pareto")
    assert listed.returncode == 0, listed.stderr[-2000:]
    s = front.summary
    for trial_id in s["trial_id"]:
        on = bool(s.loc[s["trial_id"] == trial_id, "pareto"].iloc[0])
        assert (f"--trial {trial_id}" in listed.stdout) == on, listed.stdout
    off = s.loc[~s["feasible"], "trial_id"].iloc[0]  # an infeasible trial: exported all the same
    out = front.env.tmp / "off.pt"
    done = front.env.here("export", f"results/{NAME}", "--trial", off, "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    exported = torch.load(out, weights_only=False)
    assert exported["source"]["trial_id"] == off and exported["source"]["selected_by"] == f"--trial {off}"
    # the best by the search metric (the first objective) is the best feasible trial, never one that broke the floor
    best = front.env.here("export", f"results/{NAME}", "--out", str(front.env.tmp / "best.pt"))
    ok = s[s["feasible"]]
    expected = ok.loc[ok["best/val/mse"].idxmin(), "trial_id"]
    assert best.returncode == 0 and f"best trial {expected} " in best.stdout, best.stdout


@pytest.mark.slow
def test_the_report_shows_the_front_with_a_picture_per_member(front):
    proc = front.env.here("report", f"results/{NAME}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = front.results / "report"
    md = (report / "report.md").read_text()
    section = md[md.index("## Quality against coherence: the Pareto front"):]
    section = section[:section.index("\n## ", 3)]
    members = set(front.summary.loc[front.summary["pareto"], "trial_id"])
    table = section[section.index("The front's"):section.index("The same validation images")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| trial |")]
    assert {line.split("|")[1].strip() for line in rows} == members
    assert "(figures/front.png)" in section
    for i in range(len(members)):  # the same validation images and z through each member
        assert (report / "figures" / f"front_recon_{i}.png").stat().st_size > 0
        assert (report / "figures" / f"front_samples_{i}.png").stat().st_size > 0
    assert not (report / "figures" / f"front_recon_{len(members)}.png").exists()
    assert "one trial of one seed" in section  # it says how sure it is
    if len(members) > 1:
        assert "train.beta" in section.split("The same validation images")[-1]  # a sentence on what moves



# ---------------------------------------------------------------------------------------------
# two objectives under ASHA, which stops trials by the declared search.metric alone


ASHA = "front_asha"


@pytest.fixture(scope="module")
def asha(tmp_path_factory):
    env = Env(tmp_path_factory.mktemp("front_asha"))
    try:
        raw = front_space(env.tmp / "cache")
        raw["name"] = ASHA
        raw["train"].update(epochs=3, fid_every=3)
        raw["search"].update(scheduler="asha", metric="val/mse", grace_period=1, reduction_factor=3,
                             num_samples=4, max_concurrent=1)
        proc = env.run("search", str(env.write(raw)))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        report = env.here("report", f"results/{ASHA}")
        assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
        yield env, proc, env.tmp / "results" / ASHA
    finally:
        env.cleanup()


@pytest.mark.slow
def test_asha_on_a_declared_metric_stops_trials_and_the_front_holds_only_full_ones(asha):
    env, proc, results = asha
    s = pd.read_csv(results / "summary.csv", dtype={"trial_id": str})
    assert "ASHA compares them at epoch 1" in proc.stdout
    study = optuna.load_study(study_name=ASHA, storage=f"sqlite:///{results / 'optuna.db'}")
    states = {t.user_attrs["tune_trial_id"]: t.state for t in study.trials}
    for _, row in s.iterrows():  # a stopped trial is pruned, not failed, though Optuna got no value for it
        expected = {"completed": optuna.trial.TrialState.COMPLETE, "stopped": optuna.trial.TrialState.PRUNED}
        assert states[row["trial_id"]] == expected[row["status"]], (row["trial_id"], row["status"])
    assert set(s.loc[s["pareto"], "trial_id"]) == by_hand(s)
    assert set(s.loc[s["pareto"], "status"]) <= {"completed"}


@pytest.mark.slow
def test_the_report_front_under_asha_compares_every_trial_at_one_epoch(asha):
    """The report's front is at the KL table's epoch, from each trial's per-epoch history: here
    worked out again from result.json (both objectives are measured at ASHA's rung: they rank
    the trial), with the floor on that epoch's KL."""
    env, proc, results = asha
    md = (results / "report" / "report.md").read_text()
    section = md[md.index("## Quality against coherence: the Pareto front"):]
    epoch = int(section.split("measured at epoch ")[1].split(".")[0])
    points = {}
    for path in results.glob("run_trial_*/result.json"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        at = [r for r in records if r["epoch"] == epoch]
        if at and at[-1].get("eval/epoch") == epoch:
            r = at[-1]
            points[r["trial_id"]] = (r["val/mse"], r["eval/fid_sample"], r["val/kl"])
    assert len(points) >= 2, points
    ok = {t: p for t, p in points.items() if p[2] >= FLOOR}
    def beats(q, p):  # both minimised: no worse on either and better on one
        return q[0] <= p[0] and q[1] <= p[1] and (q[0] < p[0] or q[1] < p[1])

    expected = {t for t, p in ok.items() if not any(beats(q, p) for u, q in ok.items() if u != t)}
    table = section[section.index("The front's"):section.index("The same validation images")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| trial |")]
    assert {line.split("|")[1].strip() for line in rows} == expected
    assert f"for each of the {len(points)} trials measured at epoch {epoch}" in section
