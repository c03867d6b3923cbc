"""The report's page: its sections (the KL-weight table, the rate-distortion plane, what
mattered, the best trial, every trial) as typed parts, each comparison at one epoch.

Each section is built by one function of `PageData` (what the sections share, made once) that
returns a `Section`, or None to leave it out; `SECTIONS` lists them in the page's order."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import vaetune.report._figures as _figures
from vaetune.fileio import is_remote
from vaetune.metrics.registry import get
from vaetune.ranking import best_trial, describe, has_checkpoint, rank
from vaetune.report._front import front_section
from vaetune.report._importance import param_importance
from vaetune.report._kltable import KLTable
from vaetune.report._pareto import FALLBACK, pareto_front
from vaetune.report._pictures import pictures_parts
from vaetune.report._render import (
    Details,
    Figure,
    Finding,
    Grids,
    Notes,
    Paragraph,
    Report,
    Section,
    Table,
)
from vaetune.report._sentences import SPREAD_RULE, sentences
from vaetune.report._table import kl_tables
from vaetune.results import (
    EPOCHS,
    ERROR,
    FEASIBLE,
    STATUS,
    STOPPED,
    TRIAL_ID,
    WALL_TIME,
    SearchResults,
    final_column,
    final_metrics,
    frame_reports,
    last_grids,
    time_split,
)
from vaetune.samplers import SAMPLERS

# what the KL table's columns measure
COLUMNS = ("Reconstruction quality: val MSE, PSNR, SSIM; coherence of generated images: FID and "
           "KID of samples decoded from z ~ N(0, I), with their precision (fidelity: the share of "
           "samples inside the real images' manifold) and recall (coverage: the share of real "
           "images inside the samples' manifold); GMM: the same four of samples decoded from z "
           "drawn from the latent prior fitted to the training set's posterior means (a Gaussian "
           "mixture, train.prior); FID recon: FID of reconstructions; KL: the rate in nats per "
           "image; active units: latent dimensions the encoder uses.")
CURVE_METRICS = ("val/psnr", "val/kl", "eval/fid_sample")  # shown beside the search metric


@dataclass
class PageData:
    """What the page's sections are built from."""

    results: SearchResults
    tables: list[KLTable]  # the KL tables, the main one first
    front: Any  # DataFrame: the Pareto front at the main table's epoch
    objectives: tuple[str, str]  # the front's two objectives
    figures: dict[str, bytes]  # name -> PNG: a section adds the figures its parts name
    pictures: int  # picture columns per KL table


def assemble(results: SearchResults, *, pictures: int = 6):
    """The report record, the KL tables (the main one first) and the Pareto front at its epoch."""
    figures: dict[str, bytes] = {}
    s = results.summary
    statuses = ", ".join(f"{n} {st}" for st, n in s[STATUS].value_counts().items()) if STATUS in s else ""
    meta = [f"{len(s)} trials ({statuses}); search metric {results.metric} ({results.mode}); "
            f"up to {results.max_epochs} epochs; searched: {', '.join(results.searched) or 'nothing'}."]
    if results.sweep:
        sw = results.sweep
        origin = f"trial {sw['trial_id']} of {sw['source']}" if sw.get("trial_id") else sw["source"]
        meta.append(f"A sweep of {sw['key']} over {len(sw['values'])} values × {sw['seeds']} seeds around {origin}; "
                    "every trial trained the full epochs (no early stopping).")
    meta.append(f"Results folder {results.folder}; report generated {time.strftime('%Y-%m-%d %H:%M:%S')}.")
    tables = kl_tables(results)
    front, objectives = pareto_front(tables[0])
    page = PageData(results, tables, front, objectives, figures, pictures)
    sections = [section for build in SECTIONS if (section := build(page)) is not None]
    title = "KL-weight" if tables[0].key_label == "β" else tables[0].key_label
    return Report(f"vaetune report — {results.name} ({title})", meta, sections, figures), tables, front


def _table_section(page: PageData) -> Section:
    tables, figures, n_pictures = page.tables, page.figures, page.pictures
    main = tables[0]
    measured = ("Every value of a row is measured at the table's epoch, from each trial's per-epoch history "
                "(FID and KID measured at that epoch, never carried from an earlier one). ")
    spread = f"Two rows are called {SPREAD_RULE}. " if main.sweep else ""
    parts: list = [Paragraph(f"Rows: {main.how}. {measured}{spread}Best of each ranked column highlighted"
                         f"{' (with every row indistinguishable from it)' if main.sweep else ''}. "
                         f"{COLUMNS}")]
    parts.append(Table(main.header(), main.cells(), main.best_cells(), left=1 if main.sweep else 3))
    parts.append(Notes(main.notes))
    parts += [Finding(line) for line in sentences(main).values()]
    parts += pictures_parts(main.rows, figures, n_pictures, main.epoch, main.key_label,
                            whose="the trial of its first seed" if main.sweep else "its trial")
    for t in tables[1:]:
        rows = f"the {len(t.rows)} rows" if len(t.rows) != 1 else "the one row"
        parts.append(Paragraph(f"At epoch {t.epoch}: {t.how.split(', the best')[0]}, over {rows} with a trial measured "
                           "there."))
        parts.append(Table(t.header(), t.cells(), t.best_cells(), left=1 if t.sweep else 3))
        parts.append(Notes(t.notes))
    title = "KL-weight quality/coherence table" if main.key_label == "β" else f"Quality/coherence over {main.key}"
    return Section(title, parts)


def _rd_section(page: PageData) -> Section:
    results, table, front, figures = page.results, page.tables[0], page.front, page.figures
    a, b = objectives = page.objectives
    points = table.points()
    figures["rate_distortion"] = _figures.rate_distortion(points, front, objectives, table.key_label,
                                                          joined=table.sweep)
    what = ("each value of the sweep as the mean over its seeds, with error bars of one standard deviation, joined "
            f"in order of {table.key_label}" if table.sweep else "each trial measured there as a point")
    parts: list = [Paragraph(f"At epoch {table.epoch} (the KL table's), {what}, in the rate–distortion plane (Alemi et "
                         "al. 2018): rate = KL of the posterior to the prior, distortion = the reconstruction loss; "
                         f"colour = {table.key_label}. The Pareto front is over ({a}, {b}), both lower-is-better: no "
                         "other point beats a front point on both.")]
    parts.append(Figure("rate_distortion", "rate-distortion plane and Pareto front"))
    if b == FALLBACK:
        parts.append(Notes([f"No sample FID at this epoch, so the front uses {FALLBACK} as the second objective."]))
    extra = [p for p in results.searched if p != table.key and p in front and not table.sweep]
    lead = [table.key_label] if table.sweep else ["trial", table.key_label]
    rows = [[*([str(r["label"])] if table.sweep else [str(r[TRIAL_ID]), _param(r.get("value"))]),
             *(_num(r, m) for m in (a, b, "val/kl")), *(_param(r[p]) for p in extra)] for _, r in front.iterrows()]
    parts.append(Paragraph(f"Pareto-front points at epoch {table.epoch} ({len(rows)} of {len(points)}):"))
    parts.append(Table([*lead, a, b, "val/kl", *extra], rows, left=len(lead)))
    return Section("Rate-distortion plane", parts)


def _param(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _num(row, col: str) -> str:
    v = row.get(col)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if v != v else f"{v:.4g}"


def _front_section(page: PageData) -> Section | None:
    return front_section(page.results, page.tables[0].epoch, page.figures, page.pictures)


def _mattered_section(page: PageData) -> Section:
    results, table, figures = page.results, page.tables[0], page.figures
    parts: list = []
    imp = param_importance(results)
    if imp.values:
        figures["importance"] = _figures.importance_bars(imp.values, imp.target)
        parts.append(Paragraph("Hyperparameter importance:"))
        parts.append(Figure("importance", "hyperparameter importance"))
        parts.append(Table(["hyperparameter", "importance"], [[k, f"{v:.3f}"] for k, v in imp.values.items()]))
    parts.append(Notes([imp.note]))
    figures["parallel"] = _figures.parallel_coordinates(results.summary, results.searched, results.metric, results.mode)
    parts.append(Figure("parallel", "parallel coordinates"))
    if STATUS in results.summary and (results.summary[STATUS] == STOPPED).any():
        parts.append(Notes([f"The parallel coordinates colour each trial by its last {results.metric}: trials "
                                "ASHA stopped were trained fewer epochs, so colours compare unequal training."]))
    if results.histories:
        rungs = _rungs(results)
        metrics = [results.metric] + [m for m in CURVE_METRICS if m != results.metric]
        figures["learning_curves"] = _figures.learning_curves(results.histories, results.summary, metrics, table.key, rungs,
                                                               results.max_epochs)
        stopped = int((results.summary[STATUS] == STOPPED).sum()) if STATUS in results.summary else 0
        how = (f"{stopped} trials stopped early by ASHA, marked × (dotted lines: its rungs)" if rungs
               else "no early stopping (scheduler fifo)")
        parts.append(Paragraph(f"Learning curves of all {len(results.histories)} trials (from each trial's result.json), "
                           f"coloured by {table.key_label}; {how}."))
        parts.append(Figure("learning_curves", "learning curves"))
    split = time_split(frame_reports(results.histories.values()))
    if split is not None:
        parts.append(Paragraph(f"Where the time went: {split.line()} (from each trial's result.json)."))
    missing = len(results.summary) - len(results.histories)
    if missing:
        parts.append(Notes([f"{missing} trials have no local result.json (remote storage or no epoch reported); "
                                "their curves are missing."]))
    return Section("What mattered", parts)


def _rungs(results: SearchResults) -> list[int]:
    return list(results.plan.rungs) if results.plan is not None else []


def _best_section(page: PageData) -> Section:
    results, figures = page.results, page.figures
    s = results.summary
    best = best_trial(s, results.metric, results.mode)
    if best is None:
        held = " while holding the search's constraints" if FEASIBLE in s else ""
        return Section("Best trial", [Paragraph(f"No trial reported {results.metric}{held}.")])
    held = f" among the trials that hold {describe(results.constraints)}" if FEASIBLE in s and results.constraints else ""
    picks = ("This is the trial `vaetune export` picks, the gallery ranks first and a sweep starts from."
             if has_checkpoint(best) else
             "It kept no checkpoint, nor did any trial ranked below it: `vaetune export` has none to give.")
    parts: list = [Paragraph(f"Trial {best['trial_id']} is best by {results.best_column()} = "
                         f"{float(best[results.best_column()]):.5g} ({results.mode}){held} (each trial's best "
                         "epoch, whatever epochs it trained; the KL table compares at one epoch); status "
                         f"{best.get(STATUS, '')}, {int(best.get(EPOCHS, 0) or 0)} epochs. {picks}")]
    if results.plan is not None:
        parts.append(Paragraph(_handed_sentence(results.plan.config)))
    run = str(best.get("mlflow_run_id", "") or "")
    parts.append(Paragraph(f"MLflow run id: {run or '— (not tracked)'}"
                       + (f"; experiment {results.tracking.get('experiment')}, store {results.tracking.get('uri')}"
                          if run else "")))
    parts.append(Paragraph(f"Checkpoint: {best.get('checkpoint', '') or '—'}  ·  export it with: "
                       f"vaetune export {results.folder} --out best.pt"))
    params = [[p, _param(best[p])] for p in results.searched if p in best]
    parts.append(Table(["searched hyperparameter", "value"], params))
    metrics = sorted(m for m in final_metrics(results.summary.columns) if not m.startswith("time/"))
    mrows = [[m, _num(best, final_column(m))] for m in metrics]
    parts.append(Table(["metric (last epoch)", "value"], mrows))
    grids = last_grids(str(best.get("checkpoint", "") or ""))
    if grids:
        for kind, png in grids.items():
            figures[f"best_{kind}"] = png
        drawn = results.plan.config.handed_sampler.words if results.plan is not None else "N(0, I)"
        parts.append(Paragraph("Its last grids: reconstructions (rows alternate originals and reconstructions) and "
                           f"samples with z from {drawn}, drawn from the grids' seed."))
        parts.append(Grids([(f"best_{k}", "reconstructions" if k == "recon" else "samples") for k in grids]))
    config = _checkpoint_config(str(best.get("checkpoint", "") or ""))
    if config:
        parts.append(Details("full resolved configuration", config))
    return Section("Best trial", parts)


def _handed_sentence(config) -> str:
    """Which samples the search hands its user (vaetune.samplers), and whether they ranked it."""
    handed = config.handed_sampler
    ranked = [m for m in (config.search.metric, *config.search.metrics) if get(m).sampler == handed.name]
    why = f": the samples whose {ranked[0]} ranked the trials" if ranked else ""
    others = ", ".join(f"--sampler {s.name} for {s.words}" for s in SAMPLERS.values() if s != handed)
    return (f"Its samples are drawn with z from {handed.words} (`vaetune sample`'s default and the gallery's, "
            f"--sampler {handed.name}){why}; {others}.")


def _checkpoint_config(path: str) -> str:
    if not path or is_remote(path):
        return ""
    try:
        from vaetune.checkpoint import load_checkpoint

        return json.dumps(load_checkpoint(path)["config"], indent=1)
    except Exception:  # the page shows what it can
        return ""


def _trials_section(page: PageData) -> Section:
    results = page.results
    s = results.summary
    cols = [c for c in [TRIAL_ID, *results.searched, STATUS, EPOCHS, WALL_TIME, results.best_column(),
                        *(final_column(m) for m in ("val/mse", "val/kl", "eval/fid_sample",
                                                    "eval/fid_sample_gmm")), ERROR] if c in s]
    ranked = rank(s, results.best_column(), results.mode)
    ordered = list(ranked.index) + [i for i in s.index if i not in set(ranked.index)]
    rows = []
    for i in ordered:
        r = s.loc[i]
        rows.append([_param(r[c]) if c in results.searched else str(r[c]) if c in (TRIAL_ID, STATUS, ERROR)
                     else _num(r, c) for c in cols])
    return Section("All trials", [Table(cols, rows, left=1)])



# the page's sections, in order
SECTIONS: list[Callable[[PageData], Section | None]] = [
    _table_section, _rd_section, _front_section, _mattered_section, _best_section, _trials_section]
