"""`vaetune report` on one small real search: the KL table, its agreement with summary.csv and
MLflow, the HTML page in headless Chromium, the MLflow artifacts, and the analysis scripts; the
fitted latent prior of every trial (its checkpoint, its metrics, export and `vaetune sample`).

The search (sprites 16 px, a β grid of three values, 3 epochs, FID of 16 images at the last
epoch, ranked by the FID of samples from the fitted prior) runs once per session through the CLI
in a subprocess; `finished_search` reuses it for tests/test_viz.py.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
import yaml
from browser import CHROMIUM_ARGS, find_chromium
from guards import HANG_GUARD_S
from mlflow.tracking import MlflowClient
from PIL import Image

from vaetune.cli import main as cli
from vaetune.metrics import GMM_KEYS, PR_KEYS
from vaetune.metrics.registry import table_columns
from vaetune.report import load_results, param_importance
from vaetune.report._kltable import KLTable, Row
from vaetune.report._sentences import knee, sentences
from vaetune.report._table import kl_table, kl_tables
from vaetune.results import SearchResults
from vaetune.spec import space_from_dict

ROOT = Path(__file__).resolve().parents[1]
BETAS = [0.01, 0.1, 1.0]
NAME = "betagrid"
METRICS = list(table_columns())  # the KL table's metric columns, as the registry gives them
SEARCH_METRIC = "eval/fid_sample_gmm"  # the search ranks by the fitted prior's sample FID


def search_space(cache: Path) -> dict:
    return {
        "name": NAME,
        "data": {"source": "builtin:sprites", "image_size": 16, "count": 600, "cache_dir": str(cache)},
        "model": {"arch": "conv", "width": 8, "latent_dim": 4},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.003, "beta": {"grid": BETAS}, "num_threads": 1,
                  "grid_size": 4, "fid_every": 3, "fid_samples": 16},
        "search": {"sampler": "grid", "num_samples": 3, "max_concurrent": 2, "scheduler": "fifo",
                   "metric": SEARCH_METRIC},
    }


def finished_search(tmp_path_factory) -> Path:
    """The working folder of the session's search (run on first use, reused after)."""
    work = tmp_path_factory.getbasetemp() / "report_search"
    results = work / "results" / NAME
    if (results / "summary.csv").exists():
        return work
    work.mkdir(parents=True, exist_ok=True)
    (work / "space.yaml").write_text(yaml.safe_dump(search_space(work / "cache"), sort_keys=False))
    ray_tmp = tempfile.mkdtemp(prefix="vt", dir="/tmp")  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.run([sys.executable, "-m", "vaetune.cli", "search", "space.yaml"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=HANG_GUARD_S)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work


@pytest.fixture(scope="session")
def search(tmp_path_factory) -> Path:
    return finished_search(tmp_path_factory)


@pytest.fixture(scope="session")
def report(search, tmp_path_factory):
    """`vaetune report results/betagrid` run once (in-process through the CLI entry point)."""
    cwd = os.getcwd()
    os.chdir(search)
    try:
        t0 = time.perf_counter()
        code = cli(["report", f"results/{NAME}"])
        seconds = time.perf_counter() - t0
    finally:
        os.chdir(cwd)
    assert code == 0
    out = search / "results" / NAME / "report"
    print(f"\nvaetune report took {seconds:.1f}s")
    return out


def summary(search: Path) -> pd.DataFrame:
    return pd.read_csv(search / "results" / NAME / "summary.csv", dtype={"trial_id": str})


def tracking(search: Path) -> dict:
    return json.loads((search / "results" / NAME / "tracking.json").read_text())


# ---------------------------------------------------------------------------------------------
# the table


@pytest.mark.slow
def test_kl_table_has_one_row_per_beta_with_every_column_filled(report):
    table = pd.read_csv(report / "kl_table.csv", dtype={"trial_id": str})
    assert sorted(table["beta"]) == BETAS
    for metric in METRICS + ["epoch"]:
        assert table[metric].notna().all(), f"{metric} empty in {table.to_dict('records')}"
    assert (table["epoch"] == 3).all()
    assert (table["trials"] == 1).all()


@pytest.mark.slow
def test_table_agrees_with_summary_and_mlflow(report, search):
    table = pd.read_csv(report / "kl_table.csv", dtype={"trial_id": str})
    s = summary(search).set_index("trial_id")
    client = MlflowClient(tracking(search)["uri"])
    for _, row in table.iterrows():
        trial = s.loc[row["trial_id"]]
        assert trial["train.beta"] == pytest.approx(row["beta"])
        run_id = tracking(search)["trial_runs"][row["trial_id"]]
        assert trial["mlflow_run_id"] == run_id == row["mlflow_run_id"]
        for metric in METRICS:
            assert row[metric] == pytest.approx(trial[f"final/{metric}"], rel=1e-9), metric
            history = client.get_metric_history(run_id, metric)
            last = max(history, key=lambda m: m.step)
            assert last.step == 3
            assert row[metric] == pytest.approx(last.value, rel=1e-6), metric


@pytest.mark.slow
def test_findings_name_the_betas_the_numbers_pick(report):
    table = pd.read_csv(report / "kl_table.csv", dtype={"beta_label": str})
    md = (report / "report.md").read_text()
    best_q = table.loc[table["val/mse"].idxmin(), "beta_label"]
    best_c = table.loc[table["eval/fid_sample"].idxmin(), "beta_label"]
    assert f"At epoch 3, the best reconstruction quality is at β={best_q}:" in md
    assert f"At epoch 3, the best coherence of generated samples is at β={best_c}:" in md
    assert "trade-off" in md
    best_p = table.loc[table["eval/precision"].idxmax(), "beta_label"]
    best_r = table.loc[table["eval/recall"].idxmax(), "beta_label"]
    assert "At epoch 3, the best fidelity of samples (precision: the share of samples inside" in md
    assert re.search(rf"the best fidelity of samples \(precision[^)]*\) is at β={best_p}:", md)
    assert re.search(rf"the best coverage of the real images \(recall[^)]*\) is at β={best_r}:",
                     md)
    prior = next(line for line in md.splitlines()
                 if "sample FID with z from the latent prior" in line)
    for _, row in table.iterrows():  # each β with both FIDs, as the table shows them
        gmm, normal = row["eval/fid_sample_gmm"], row["eval/fid_sample"]
        assert f"β={row['beta_label']} ({gmm:.1f} against {normal:.1f}" in prior
    assert "one seed per row" in prior or "untested" in prior


# ---------------------------------------------------------------------------------------------
# the fitted latent prior of every trial


@pytest.mark.slow
def test_every_trial_reports_precision_recall_and_the_fitted_prior_fid(search):
    s = summary(search)
    assert len(s) == len(BETAS)
    for key in (*PR_KEYS, *GMM_KEYS):
        assert s[f"final/{key}"].notna().all(), key
    for key in ("eval/precision", "eval/recall", "eval/precision_gmm", "eval/recall_gmm"):
        assert s[f"final/{key}"].between(0, 1).all(), key
    # ranked by it (search.metric: eval/fid_sample_gmm): the best over epochs is the one FID epoch's
    assert (s["best/eval/fid_sample_gmm"] == s["final/eval/fid_sample_gmm"]).all()
    client = MlflowClient(tracking(search)["uri"])
    for _, row in s.iterrows():
        logged = client.get_run(row["mlflow_run_id"]).data.metrics
        for key in (*PR_KEYS, *GMM_KEYS):
            assert logged[key] == pytest.approx(row[f"final/{key}"], rel=1e-6), key


@pytest.mark.slow
def test_a_trials_checkpoint_holds_the_prior_its_fid_measured(search):
    """The mixture in the epoch-3 checkpoint loads with weights_only=True and, evaluated again
    with the checkpoint's model, gives the FID, KID, precision and recall the trial reported."""
    from vaetune.checkpoint import load_model, load_prior
    from vaetune.data import load_data
    from vaetune.metrics import evaluate_generative
    from vaetune.models import LatentMixture

    row = summary(search).iloc[0]
    path = Path(row["checkpoint"]) / "checkpoint.pt"  # the trial's best by eval/fid_sample_gmm
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 3 and state["prior"]["covariance"] == "diag"  # measured there only
    model, config, _ = load_model(path)
    prior = load_prior(state, path, model.latent_dim)
    assert isinstance(prior, LatentMixture) and prior.components == 10 and prior.dim == 4
    out = evaluate_generative(model, load_data(config.data), config.train, "cpu",
                              cache_dir=config.data.cache_dir, prior=prior)
    for key in GMM_KEYS:
        assert out[key] == pytest.approx(row[f"final/{key}"], rel=1e-4, abs=1e-6), key


@pytest.mark.slow
def test_the_trial_named_best_has_the_best_samples_as_vaetune_sample_draws_them(search):
    """Each trial's samples measured again from its checkpoint, drawn as `vaetune sample` draws them
    (its default sampler, seed 0), against the reference images: the values the search ranked by,
    and the trial summary.csv and export name best is the one whose samples are best."""
    from vaetune.checkpoint import load_model, load_prior, pick_sampler, sample_images
    from vaetune.data import load_data
    from vaetune.metrics import FeatureExtractor, fid_from_features, quantize
    from vaetune.ranking import pick_best

    s, extractor, fids = summary(search), FeatureExtractor("cpu"), {}
    for _, row in s.iterrows():
        path = Path(row["checkpoint"])
        model, config, state = load_model(path)
        prior = load_prior(state, path, model.latent_dim)
        sampler = pick_sampler(None, prior, str(path), config)
        assert sampler.name == "gmm"  # the samples that ranked it: search.metric is the mixture's sample FID
        n = config.train.fid_samples
        drawn = quantize(sample_images(model, n, seed=0, prior=prior))
        reference = load_data(config.data).subset(config.train.fid_reference)[0][:n]
        fids[row["trial_id"]] = fid_from_features(extractor.images(drawn), extractor.images(reference))
        assert fids[row["trial_id"]] == pytest.approx(row[f"best/{SEARCH_METRIC}"], rel=1e-4)
    assert len(set(fids.values())) == len(fids)  # the trials differ: a ranking to get right
    best, _ = pick_best(s, SEARCH_METRIC, "min")
    assert best["trial_id"] == min(fids, key=fids.get)


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.slow
def test_export_keeps_the_prior_and_sample_draws_from_it(search, tmp_path, capsys):
    from torchvision.utils import save_image

    from vaetune.checkpoint import load_model
    from vaetune.models import LatentMixture

    s = summary(search)
    best = s.loc[s["best/eval/fid_sample_gmm"].idxmin()]
    best_pt = tmp_path / "best.pt"
    assert cli(["export", str(search / "results" / NAME), "--out", str(best_pt)]) == 0
    said = capsys.readouterr().out
    assert f"best trial {best['trial_id']} by min best/eval/fid_sample_gmm" in said
    exported = torch.load(best_pt, weights_only=True)
    assert exported["epoch"] == 3  # the epoch whose model the FID measured, not a placeholder's
    trial = torch.load(Path(best["checkpoint"]) / "checkpoint.pt", weights_only=True)
    for key in ("weights", "means", "scale"):
        assert torch.equal(exported["prior"][key], trial["prior"][key]), key

    def sample(ckpt: Path, *args: str) -> np.ndarray:
        out = tmp_path / f"{ckpt.stem}{'_'.join(args)}.png"
        assert cli(["sample", str(ckpt), "--n", "16", "--seed", "3", "--out", str(out), *args]) == 0
        return _png(out)

    gmm, default = sample(best_pt, "--sampler", "gmm"), sample(best_pt)
    normal = sample(best_pt, "--sampler", "normal")
    assert np.array_equal(default, gmm) and not np.array_equal(gmm, normal)
    assert np.array_equal(sample(best_pt, "--sampler", "prior"), normal)  # N(0, I)'s older name
    # the grid is the exported mixture's draw for the seed, decoded by the exported model
    model, _, _ = load_model(best_pt)
    z = LatentMixture.from_state(exported["prior"]).sample(16, torch.Generator().manual_seed(3))
    with torch.no_grad():
        save_image(model.decode(z), tmp_path / "expected.png", nrow=4, padding=1, pad_value=1.0)  # white between
    # equal up to the rounding of a value exactly halfway between two 8-bit levels (torchvision adds
    # 0.5 and truncates, vaetune rounds half to even)
    assert np.abs(gmm.astype(int) - _png(tmp_path / "expected.png").astype(int)).max() <= 1

    del exported["prior"]  # as trained with train.prior: none
    bare = tmp_path / "bare.pt"
    torch.save(exported, bare)
    capsys.readouterr()
    assert cli(["sample", str(bare), "--sampler", "gmm", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "holds no fitted latent mixture" in err and "--sampler normal" in err
    assert len(err.strip().splitlines()) == 1
    assert np.array_equal(sample(bare), normal)  # the default without a prior: N(0, I)


# ---------------------------------------------------------------------------------------------
# the page


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.root: dict[str, str] = {}
        self.images: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.root = attrs
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.mark.slow
def test_html_is_self_contained(report):
    text = (report / "report.html").read_text()
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) >= 10
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in text and "https://" not in text
    for fig in re.findall(r"\(figures/([^)]+)\)", (report / "report.md").read_text()):
        assert (report / "figures" / fig).stat().st_size > 0


@pytest.mark.slow
def test_html_images_load_in_headless_chromium(report, tmp_path):
    proc = subprocess.run(
        [find_chromium(), *CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", (report / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    page = _Page()
    page.feed(proc.stdout)
    assert page.root.get("data-report-ready") == "true", proc.stderr[-2000:]
    assert page.root["data-images-broken"] == "0"
    assert int(page.root["data-images-ok"]) == len(page.images) >= 10
    kl = next(t for t in page.tables if t and "FID samples" in t[0])
    assert len(kl) == 1 + len(BETAS)
    assert [float(r[0]) for r in kl[1:]] == BETAS
    assert all(cell not in ("", "—") for r in kl[1:] for cell in r)
    for title in ("Rate-distortion plane", "What mattered", "Best trial"):
        assert title in proc.stdout


@pytest.mark.slow
def test_report_is_logged_to_the_parent_run(report, search):
    t = tracking(search)
    client = MlflowClient(t["uri"])
    names = {Path(a.path).name for a in client.list_artifacts(t["parent_run_id"], "report")}
    assert {"report.html", "report.md", "kl_table.csv", "pareto.csv", "figures"} <= names
    figures = client.list_artifacts(t["parent_run_id"], "report/figures")
    assert any(Path(f.path).name == "rate_distortion.png" for f in figures)
    assert client.get_run(t["parent_run_id"]).data.tags["vaetune.report"] == "report/report.html"


@pytest.mark.slow
def test_pareto_front_is_non_dominated(report, search):
    front = pd.read_csv(report / "pareto.csv", dtype={"trial_id": str})
    s = summary(search)
    a, b = "final/val/mse", "final/eval/fid_sample"
    assert len(front) >= 1
    assert (front["epoch"] == 3).all()  # the table's epoch: the last, whose values summary.csv holds
    for _, f in front.iterrows():
        fa, fb = f["val/mse"], f["eval/fid_sample"]
        beaten = s[(s[a] <= fa) & (s[b] <= fb) & ((s[a] < fa) | (s[b] < fb))]
        assert beaten.empty
    best_mse = s.loc[s[a].idxmin(), "trial_id"]
    assert best_mse in set(front["trial_id"])


@pytest.mark.slow
def test_analysis_scripts_run(search, report, tmp_path):
    results = search / "results" / NAME
    out = subprocess.run([sys.executable, str(ROOT / "analysis" / "kl_table.py"), str(results),
                          "--csv", str(tmp_path / "t.csv")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n| ") >= 1 + len(BETAS)
    assert pd.read_csv(tmp_path / "t.csv")["beta"].tolist() == sorted(BETAS)
    bad = subprocess.run([sys.executable, str(ROOT / "analysis" / "kl_table.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a vaetune search folder" in bad.stderr


def test_report_of_a_folder_that_is_not_a_search(tmp_path, capsys):
    assert cli(["report", str(tmp_path)]) == 2
    assert "not a vaetune search folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# pieces without a search


def _row(beta: float, mse: float, fid: float | None, mse_std: float | None = None,
         fid_std: float | None = None, n: int = 1) -> Row:
    values, spread = dict.fromkeys(METRICS), dict.fromkeys(METRICS)
    values.update({"val/mse": mse, "eval/fid_sample": fid})
    spread.update({"val/mse": mse_std, "eval/fid_sample": fid_std})
    return Row(beta, f"{beta:g}", f"t{beta:g}", "completed", n, n, values, spread, "", "", "constant")


def _table(rows: list[Row], sweep: bool = False) -> KLTable:
    table = KLTable(epoch=3, key="train.beta", rows=rows, how="test", sweep=sweep)
    table.missing = [m for m in METRICS if all(r.values[m] is None for r in rows)]
    return table


def test_sentences_locate_the_turn_from_the_numbers():
    rows = [_row(0.01, 0.010, 300), _row(0.1, 0.012, 150), _row(1.0, 0.030, 140), _row(10, 0.080, 139)]
    said = sentences(_table(rows))
    assert "β=0.01" in said["quality"] and "β=10" in said["coherence"]
    assert knee(rows, "val/mse", "eval/fid_sample") is rows[1]
    assert "turns at β=0.1" in said["tradeoff"]
    assert "spread over seeds is unknown" in said["spread"]  # one trial per row: nothing is tested


def test_a_difference_inside_the_seed_spread_is_reported_as_indistinguishable():
    # means 0.0100 and 0.0110 differ by 0.0010, less than the larger std 0.0020: indistinguishable;
    # 0.0300 is 0.0200 above the best, beyond max(0.0020, 0.0010)
    rows = [_row(0.01, 0.0100, 300, 0.0020, 5, n=2), _row(0.1, 0.0110, 200, 0.0015, 5, n=2),
            _row(1.0, 0.0300, 100, 0.0010, 5, n=2)]
    said = sentences(_table(rows, sweep=True))
    assert "best mean reconstruction quality is at β=0.01" in said["quality"]
    assert "β=0.1 is indistinguishable from it" in said["quality"] and "β=1 " not in said["quality"]
    assert "ahead of every other β by more than the seeds' spread" in said["coherence"]  # 100 vs 200: 100 > 5
    assert "β=1" in said["coherence"]
    assert "going from β=0.01 to β=1" in said["tradeoff"] and "beyond the seeds' spread" in said["tradeoff"]
    assert "spread" not in said  # n = 2 everywhere: the differences are tested

    # every difference of FID within the spread: no best is claimed, and no trade-off either
    close = [_row(0.01, 0.0100, 150, 0.0001, 20, n=2), _row(0.1, 0.0200, 140, 0.0001, 20, n=2)]
    said = sentences(_table(close, sweep=True))
    assert "coherence of generated samples is indistinguishable across β=0.01, β=0.1" in said["coherence"]
    assert "no trade-off shows within the seeds' spread: β=0.01 is among the best" in said["tradeoff"]

    # a row with one seed: its difference is untested, never claimed
    single = [_row(0.01, 0.0100, 150, 0.0001, 1, n=2), _row(0.1, 0.0200, 140, n=1)]
    said = sentences(_table(single, sweep=True))
    assert "against β=0.1 the difference is untested" in said["quality"]
    assert "spread over seeds is unknown" in said["spread"]


def test_the_fitted_prior_is_said_to_help_only_beyond_the_seeds_spread():
    def row(beta: float, fid: tuple[float, float], gmm: tuple[float, float]) -> Row:
        r = _row(beta, 0.01, fid[0], 0.001, fid[1], n=2)
        r.values["eval/fid_sample_gmm"], r.spread["eval/fid_sample_gmm"] = gmm
        return r

    # β=0.01: 150 vs 200, 50 apart, beyond max(6, 5); β=0.1: 175 vs 180 within max(8, 10);
    # β=1: 190 vs 170, worse beyond max(4, 3)
    rows = [row(0.01, (200, 5), (150, 6)), row(0.1, (180, 10), (175, 8)),
            row(1.0, (170, 3), (190, 4))]
    said = sentences(_table(rows, sweep=True))["prior"]
    lower = "lower beyond the seeds' spread at β=0.01 (150.0 ± 6.0 against 200.0 ± 5.0, -25%)"
    higher = "higher beyond the seeds' spread at β=1 (190.0 ± 4.0 against 170.0 ± 3.0, +12%)"
    assert lower in said and higher in said
    assert "within the seeds' spread at β=0.1 (175.0 ± 8.0 against 180.0 ± 10.0, -3%)" in said
    assert said.endswith("the fitted prior helps at β=0.01.")
    close = [row(0.01, (200, 30), (180, 25)), row(0.1, (180, 10), (185, 8))]
    said = sentences(_table(close, sweep=True))["prior"]
    assert said.endswith("the fitted prior helps at no value of this table.")
    no_prior = [_row(0.1, 0.01, 100), _row(1, 0.02, 90)]
    assert "prior" not in sentences(_table(no_prior))


def test_sentences_without_fid_say_coherence_was_not_measured():
    said = sentences(_table([_row(0.1, 0.02, None), _row(1.0, 0.05, None)]))
    assert "not measured" in said["coherence"]
    assert "cannot be located" in said["tradeoff"]


def test_continuous_beta_is_binned_with_the_best_trial_per_bin(tmp_path):
    betas = [10 ** (-3 + 4 * i / 19) for i in range(20)]
    frame = pd.DataFrame({"trial_id": [f"t{i}" for i in range(20)], "train.beta": betas,
                          "status": "completed", "epochs": 3, "final/val/elbo": [100 - i % 5 for i in range(20)],
                          **{f"final/{m}": 1.0 for m in METRICS}, "checkpoint": "", "mlflow_run_id": ""})
    results = SearchResults(folder=tmp_path, state={"name": "x", "metric": "val/elbo", "mode": "min",
                                                    "searched": ["train.beta"], "max_epochs": 3},
                            summary=frame, tracking={}, space=None)
    table = kl_table(results)
    assert 2 <= len(table.rows) <= 6
    assert "bins" in table.how
    assert sum(r.trials for r in table.rows) == 20
    for r in table.rows:
        lo, hi = (float(x) for x in r.label.strip("[)]").split(","))
        members = frame[(frame["train.beta"] >= lo * 0.999) & (frame["train.beta"] <= hi * 1.001)]
        # the best of each bin by the search metric at the table's epoch (their last, 3, here)
        assert frame.set_index("trial_id").loc[r.trial_id, "final/val/elbo"] == members["final/val/elbo"].min()
        assert lo * 0.999 <= r.value <= hi * 1.001


def test_with_constraints_each_row_shows_the_best_trial_that_holds_them(tmp_path):
    """A search held to val/kl >= 5, two trials per β: at β=1 the lower loss broke the floor (KL 2),
    so the row shows the other trial; at β=10 both broke it, so the row shows the lower loss and its
    status says it breaks the floor. Worked out by hand from the frame below."""
    frame = pd.DataFrame({"trial_id": ["low", "held", "c1", "c2"], "train.beta": [1.0, 1.0, 10.0, 10.0],
                          "status": "completed", "epochs": 3, "final/val/elbo": [90.0, 95.0, 80.0, 85.0],
                          "final/val/kl": [2.0, 12.0, 1.0, 3.0], "checkpoint": "", "mlflow_run_id": ""})
    state = {"name": "x", "metric": "val/elbo", "mode": "min", "searched": ["train.beta"], "max_epochs": 3,
             "constraints": {"val/kl": {"min": 5.0}}}
    table = kl_table(SearchResults(folder=tmp_path, state=state, summary=frame, tracking={}, space=None))
    shown = {r.value: (r.trial_id, r.status) for r in table.rows}
    assert shown == {1.0: ("held", "completed"), 10.0: ("c1", "completed; breaks val/kl >= 5")}
    assert any(n.startswith("Held to val/kl >= 5 at epoch 3: each row shows the best trial") for n in table.notes)
    # without constraints the lower loss is shown at both values, and nothing is said of a floor
    plain = kl_table(SearchResults(folder=tmp_path, state={k: v for k, v in state.items() if k != "constraints"},
                                   summary=frame, tracking={}, space=None))
    assert {r.value: (r.trial_id, r.status) for r in plain.rows} == {1.0: ("low", "completed"), 10.0: ("c1", "completed")}
    assert not any("Held to" in n for n in plain.notes)


def test_importance_with_too_few_complete_trials_is_a_note(tmp_path):
    study = optuna.create_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    trial = study.ask({"train.beta": optuna.distributions.FloatDistribution(0.01, 1, log=True)})
    study.tell(trial, 1.0)
    results = SearchResults(folder=tmp_path, state={"name": "tiny", "metric": "val/elbo", "mode": "min"},
                            summary=pd.DataFrame(), tracking={}, space=None)
    imp = param_importance(results)
    assert imp.values is None and "at least 3 complete trials" in imp.note


@pytest.mark.slow
def test_importance_on_the_search_study(search):
    imp = param_importance(load_results(search / "results" / NAME))
    assert imp.values is not None and set(imp.values) == {"train.beta"}
    assert math.isclose(sum(imp.values.values()), 1.0)


def test_the_kl_table_says_what_beta_meant_in_the_loss(tmp_path):
    frame = pd.DataFrame({"trial_id": ["a", "b"], "train.beta": [0.1, 1.0], "status": "completed", "epochs": 3,
                          "best/val/elbo": [1.0, 2.0], "final/val/mse": [0.01, 0.02]})
    state = {"name": "x", "metric": "val/elbo", "mode": "min", "searched": ["train.beta"], "max_epochs": 3}

    def notes(train: dict) -> list[str]:
        space = space_from_dict({"train": {"beta": {"choice": [0.1, 1.0]}, **train}})
        return kl_table(SearchResults(folder=tmp_path, state=state, summary=frame, tracking={}, space=space)).notes

    assert any("capacity objective" in n and "β is not in the loss" in n for n in notes({"objective": "capacity"}))
    assert any("β follows the linear schedule" in n for n in notes({"beta_schedule": "linear"}))
    assert not any("β" in n and "loss" in n for n in notes({}))


def test_metrics_a_search_never_recorded_are_dashes_with_a_note(tmp_path):
    frame = pd.DataFrame({"trial_id": ["a", "b"], "train.beta": [0.1, 1.0], "status": "completed", "epochs": 3,
                          "best/val/elbo": [1.0, 2.0], "final/val/mse": [0.01, 0.02], "final/val/psnr": [20.0, 17.0],
                          "final/val/ssim": [0.5, 0.4], "final/val/kl": [9.0, 2.0], "final/val/active_units": [4, 2],
                          "checkpoint": "", "mlflow_run_id": ""})
    results = SearchResults(folder=tmp_path, state={"name": "x", "metric": "val/elbo", "mode": "min",
                                                    "searched": ["train.beta"], "max_epochs": 3},
                            summary=frame, tracking={}, space=None)
    table = kl_table(results)
    assert set(table.missing) == {m for m in METRICS if m.startswith("eval/")}
    assert any("FID samples" in n and "—" in n for n in table.notes)
    fid_col = table.header().index("FID samples")
    assert [cells[fid_col] for cells in table.cells()] == ["—", "—"]
    assert [cells[table.header().index("val MSE")] for cells in table.cells()] == ["0.01", "0.02"]


def test_tables_compare_trials_at_one_epoch_and_never_use_a_carried_fid(tmp_path):
    """ASHA (rung 1, last epoch 3): a trial stopped at the rung, and one whose FID at epoch 3 was
    carried from epoch 1. The main table is at epoch 1, which all three reached, from the
    histories (not the last reports); the epoch-3 table holds only the trial measured there."""
    space = space_from_dict({"train": {"epochs": 3, "fid_every": 3, "beta": {"choice": [0.01, 0.1, 1.0]}},
                             "search": {"scheduler": "asha", "grace_period": 1, "reduction_factor": 3}})
    mse = {"a": [0.02, 0.015, 0.012], "b": [0.03], "c": [0.05, 0.04, 0.035]}
    fid = {"a": [300, 300, 250], "b": [200], "c": [100, 100, 100]}
    measured = {"a": [1, 1, 3], "b": [1], "c": [1, 1, 1]}  # eval/epoch: c's epoch-3 FID was measured at 1
    histories = {t: pd.DataFrame({"epoch": range(1, len(mse[t]) + 1), "val/mse": mse[t], "val/kl": 1.0,
                                  "val/elbo": 100.0, "eval/fid_sample": fid[t], "eval/epoch": measured[t]})
                 for t in mse}
    summary = pd.DataFrame({"trial_id": list(mse), "train.beta": [0.01, 0.1, 1.0],
                            "status": ["completed", "stopped", "completed"], "epochs": [3, 1, 3],
                            "final/val/mse": [mse[t][-1] for t in mse], "final/eval/fid_sample": [fid[t][-1] for t in mse],
                            "checkpoint": "", "trial_path": "", "mlflow_run_id": ""})
    results = SearchResults(folder=tmp_path, state={"name": "x", "metric": "eval/fid_sample", "mode": "min",
                                                    "searched": ["train.beta"], "max_epochs": 3},
                            summary=summary, tracking={}, space=space, histories=histories)
    main, later = kl_tables(results)
    assert main.epoch == 1 and [r.trial_id for r in main.rows] == ["a", "b", "c"]
    assert [r.values["val/mse"] for r in main.rows] == [0.02, 0.03, 0.05]  # epoch 1's, not the last
    assert set(main.frame()["epoch"]) == {1}
    said = sentences(main)
    assert "At epoch 1, the best reconstruction quality is at β=0.01" in said["quality"]
    assert "At epoch 1, the best coherence of generated samples is at β=1" in said["coherence"]
    assert later.epoch == 3 and [r.trial_id for r in later.rows] == ["a"]  # c's FID there was carried
    assert later.rows[0].values["eval/fid_sample"] == 250
    assert any("β=0.1 (trial b stopped at epoch 1)" in n and "β=1 (trial c completed at epoch 3)" in n
               for n in later.notes)
    assert any("vaetune sweep" in n for n in main.notes)


def test_under_the_capacity_objective_the_rows_are_the_capacity_target(tmp_path):
    """β is not in the loss under capacity: rows over train.capacity_max, even though β was searched."""
    space = space_from_dict({"train": {"epochs": 3, "objective": "capacity", "beta": {"loguniform": [0.1, 10]},
                                       "capacity_max": {"choice": [5.0, 25.0]}}, "search": {"scheduler": "fifo"}})
    summary = pd.DataFrame({"trial_id": ["a", "b", "c"], "train.beta": [0.2, 5.0, 1.0],
                            "train.capacity_max": [5.0, 5.0, 25.0], "status": "completed", "epochs": 3,
                            "final/val/mse": [0.02, 0.01, 0.03], "final/val/elbo": [90.0, 80.0, 70.0],
                            "checkpoint": "", "trial_path": "", "mlflow_run_id": ""})
    results = SearchResults(folder=tmp_path, state={"name": "x", "metric": "val/elbo", "mode": "min",
                                                    "searched": ["train.beta", "train.capacity_max"], "max_epochs": 3},
                            summary=summary, tracking={}, space=space)
    table = kl_table(results)
    assert table.key == "train.capacity_max" and table.header()[0] == "C_max"
    assert [(r.label, r.trial_id, r.trials) for r in table.rows] == [("5", "b", 2), ("25", "c", 1)]
    assert any("β is not in the loss" in n for n in table.notes)
    assert "--key train.capacity_max" in table.notes[-1]
    assert "C_max=5" in sentences(table)["quality"]
