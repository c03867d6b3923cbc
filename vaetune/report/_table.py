"""The KL-weight quality/coherence table, its three sentences, and the Pareto front.

Rows are values of β (`train.beta`): each value of a grid or choice list, or log-spaced bins of a
continuous β search, each row showing the best trial of its value or bin by the search metric.
Columns are the last epoch's metrics of that trial; a metric the search never recorded (FID
when `train.fid_every` was 0) is shown as "—" with a note, never filled in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vaetune.results import SearchResults, rank, value

BETA = "train.beta"
MAX_DISTINCT_ROWS = 8  # more distinct β values than this (a continuous search) are binned


@dataclass(frozen=True)
class Column:
    label: str
    metric: str  # summary column final/<metric> ("epochs" is the summary's own column)
    fmt: str
    mode: str | None = None  # "min"/"max": better direction; None: descriptive


COLUMNS = (
    Column("val MSE", "val/mse", "{:.4g}", "min"),
    Column("PSNR (dB)", "val/psnr", "{:.2f}", "max"),
    Column("SSIM", "val/ssim", "{:.3f}", "max"),
    Column("FID samples", "eval/fid_sample", "{:.1f}", "min"),
    Column("KID samples", "eval/kid_sample", "{:.4f}", "min"),
    Column("FID recon", "eval/fid_recon", "{:.1f}", "min"),
    Column("KL (nats)", "val/kl", "{:.2f}"),
    Column("active units", "val/active_units", "{:.0f}"),
    Column("epochs", "epochs", "{:.0f}"),
)
QUALITY = "val/mse"  # what "best quality" means in the sentences
COHERENCE = ("eval/fid_sample", "eval/kid_sample")  # first recorded one ranks coherence
DASH = "—"


@dataclass
class BetaRow:
    beta: float  # the β of the trial shown
    label: str  # the grid value, or the bin "[lo, hi)"
    trial_id: str
    status: str
    trials: int  # trials in this value or bin
    values: dict[str, float | None]  # metric -> last-epoch value (None: not recorded)
    checkpoint: str
    mlflow_run_id: str


@dataclass
class KLTable:
    rows: list[BetaRow]
    how: str  # one line: where the rows come from
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # metrics no row recorded

    def columns(self) -> list[Column]:
        return list(COLUMNS)

    def cell(self, row: BetaRow, col: Column) -> str:
        v = row.values.get(col.metric)
        return DASH if v is None else col.fmt.format(v)

    def header(self) -> list[str]:
        return ["β", "trial", "status", "trials"] + [c.label for c in COLUMNS]

    def cells(self) -> list[list[str]]:
        return [[row.label, row.trial_id, row.status, str(row.trials)] + [self.cell(row, c) for c in COLUMNS]
                for row in self.rows]

    def frame(self):
        """The table as numbers (CSV): one row per β, missing values empty."""
        import pandas as pd

        return pd.DataFrame([{"beta": r.beta, "beta_label": r.label, "trial_id": r.trial_id, "status": r.status,
                              "trials": r.trials, **{c.metric: r.values.get(c.metric) for c in COLUMNS},
                              "checkpoint": r.checkpoint, "mlflow_run_id": r.mlflow_run_id} for r in self.rows])

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header()) + " |", "|" + "---|" * len(self.header())]
        lines += ["| " + " | ".join(cells) + " |" for cells in self.cells()]
        return "\n".join(lines)


def fixed_beta(results: SearchResults) -> float:
    config = results.config()
    return float(config.train.beta) if config is not None else 1.0


def _beta_kind(results: SearchResults) -> str | None:
    if results.space is None or BETA not in results.space.params:
        return None
    return results.space.params[BETA].kind


def kl_table(results: SearchResults) -> KLTable:
    """One row per β value (or bin), the best trial of each by the search metric."""
    summary = results.summary.copy()
    best_col = results.best_column()
    notes: list[str] = []
    if BETA not in summary:
        beta = fixed_beta(results)
        summary[BETA] = beta
        notes.append(f"β was not searched (fixed at {beta:g}): one row, the best trial of the search.")
    summary = summary[summary[BETA].notna()]
    kind = _beta_kind(results)
    distinct = sorted(summary[BETA].astype(float).unique())
    if kind in ("grid", "choice") or len(distinct) <= MAX_DISTINCT_ROWS:
        groups = [(float(b), _fmt_beta(b), summary[summary[BETA].astype(float) == b]) for b in distinct]
        how = f"one row per β value ({kind or 'as sampled'}), the best trial of each by {best_col}"
    else:
        groups = _bins(summary, distinct)
        how = (f"β searched continuously ({kind}): {len(groups)} log-spaced bins, "
               f"the best trial of each bin by {best_col}")
    rows = []
    for beta, label, group in groups:
        ranked = rank(group, best_col, results.mode)
        best = ranked.iloc[0] if len(ranked) else group.iloc[0]
        rows.append(BetaRow(
            beta=float(best[BETA]) if BETA in best else beta, label=label, trial_id=str(best["trial_id"]),
            status=str(best.get("status", "")), trials=len(group),
            values={c.metric: value(best, c.metric) for c in COLUMNS},
            checkpoint=str(best.get("checkpoint", "") or ""), mlflow_run_id=str(best.get("mlflow_run_id", "") or "")))
    table = KLTable(rows=rows, how=how, notes=notes)
    table.missing = [c.metric for c in COLUMNS if all(r.values[c.metric] is None for r in rows)]
    table.notes += _missing_notes(results, table.missing)
    table.notes += _objective_notes(results)
    errored = [r for r in rows if r.status == "errored"]
    if errored:
        table.notes.append("Rows from errored trials show their last reported epoch: "
                           + ", ".join(f"β={r.label} ({r.trial_id})" for r in errored) + ".")
    return table


def _objective_notes(results: SearchResults) -> list[str]:
    """What β meant in the loss: nothing under an objective that does not read it (capacity)."""
    from vaetune.objectives import OBJECTIVES

    train = results.config().train if results.config() is not None else None
    if train is None:
        return []
    if not OBJECTIVES[train.objective].uses_beta:
        return [f"β is not in the loss under the {train.objective} objective; rows group trials by "
                "their train.beta setting only."]
    if train.beta_schedule != "constant":
        return [f"β follows the {train.beta_schedule} schedule; the table's β is its target value."]
    return []


def _fmt_beta(b: float) -> str:
    return f"{b:.3g}"


def _bins(summary, distinct: list[float]) -> list[tuple[float, str, Any]]:
    import numpy as np

    n_bins = min(6, max(2, int(math.ceil(math.sqrt(len(distinct))))))
    lo, hi = distinct[0], distinct[-1]
    log = lo > 0
    edges = np.geomspace(lo, hi, n_bins + 1) if log else np.linspace(lo, hi, n_bins + 1)
    betas = summary[BETA].astype(float).to_numpy()
    which = np.clip(np.searchsorted(edges, betas, side="right") - 1, 0, n_bins - 1)
    groups = []
    for i in range(n_bins):
        group = summary[which == i]
        if len(group):
            close = "]" if i == n_bins - 1 else ")"
            groups.append((float(math.sqrt(edges[i] * edges[i + 1]) if log else (edges[i] + edges[i + 1]) / 2),
                           f"[{edges[i]:.3g}, {edges[i + 1]:.3g}{close}", group))
    return groups


def _missing_notes(results: SearchResults, missing: list[str]) -> list[str]:
    labels = {c.metric: c.label for c in COLUMNS}
    notes = []
    evals = [m for m in missing if m.startswith("eval/")]
    if evals:
        config = results.config()
        why = ("the search ran with train.fid_every 0, so no FID/KID was computed"
               if config is not None and config.train.fid_every == 0 else "no trial reported them")
        notes.append(f"{', '.join(labels[m] for m in evals)}: {DASH} because {why}.")
    others = [m for m in missing if not m.startswith("eval/")]
    if others:
        notes.append(f"{', '.join(labels[m] for m in others)}: {DASH}, not recorded by this search's trials "
                     "(an older vaetune version?).")
    return notes


# ---------------------------------------------------------------------------------------------
# The sentences


def _coherence_metric(table: KLTable) -> str | None:
    return next((m for m in COHERENCE if m not in table.missing), None)


def _best(rows: list[BetaRow], metric: str, mode: str) -> BetaRow | None:
    scored = [r for r in rows if r.values.get(metric) is not None]
    if not scored:
        return None
    return (min if mode == "min" else max)(scored, key=lambda r: r.values[metric])


def sentences(table: KLTable) -> dict[str, str]:
    """Which β gives the best quality, the best coherence, and where the trade-off turns."""
    out = {}
    q = _best(table.rows, QUALITY, "min")
    if q is None:
        out["quality"] = "Reconstruction quality: no trial reported val/mse."
    else:
        out["quality"] = (f"Best reconstruction quality at β={q.label}: val MSE {_f(q, 'val/mse', '{:.4g}')}, "
                          f"PSNR {_f(q, 'val/psnr', '{:.2f}')} dB, SSIM {_f(q, 'val/ssim', '{:.3f}')} "
                          f"(trial {q.trial_id}).")
    cm = _coherence_metric(table)
    c = _best(table.rows, cm, "min") if cm else None
    if c is None:
        out["coherence"] = ("Coherence of generated images was not measured: no trial reported sample FID or "
                            "KID (set train.fid_every > 0 to measure it).")
    else:
        out["coherence"] = (f"Most coherent samples at β={c.label}: sample FID {_f(c, 'eval/fid_sample', '{:.1f}')}, "
                            f"KID {_f(c, 'eval/kid_sample', '{:.4f}')} (trial {c.trial_id}).")
    out["tradeoff"] = _tradeoff(table, q, c, cm)
    return out


def _f(row: BetaRow, metric: str, fmt: str) -> str:
    v = row.values.get(metric)
    return DASH if v is None else fmt.format(v)


def _tradeoff(table: KLTable, q: BetaRow | None, c: BetaRow | None, cm: str | None) -> str:
    if len(table.rows) < 2:
        return "Only one β in this search, so there is no trade-off to read."
    if q is None or c is None:
        return "The trade-off cannot be located without both val MSE and a sample FID or KID."
    if q is c:
        return (f"No trade-off within these β values: β={q.label} gives both the best reconstructions and "
                f"the most coherent samples.")
    both = [r for r in table.rows if r.values.get(QUALITY) is not None and r.values.get(cm) is not None]
    turn = knee(both, QUALITY, cm)
    dq = _rise(turn.values[QUALITY], q.values[QUALITY])
    dc = _rise(turn.values[cm], c.values[cm])
    name = "FID" if cm == "eval/fid_sample" else "KID"
    head = (f"Going from β={q.label} to β={c.label} raises val MSE by {_rise(c.values[QUALITY], q.values[QUALITY])} "
            f"and lowers sample {name} by {_drop(q.values[cm], c.values[cm])}.")
    if turn is q or turn is c:
        return head + (f" The trade-off turns at β={turn.label}, the row closest to the best of both "
                       f"(each column scaled to [0, 1]); no β in between balances them better.")
    return head + (f" The trade-off turns at β={turn.label}: the row closest to the best of both (each column "
                   f"scaled to [0, 1]), with val MSE {dq} above the best and sample {name} {dc} above the best.")


def _rise(v: float, best: float) -> str:
    return f"{100 * (v - best) / abs(best):.0f}%" if best else f"{v - best:.3g}"


def _drop(before: float, after: float) -> str:
    return f"{100 * (before - after) / abs(before):.0f}%" if before else f"{before - after:.3g}"


def knee(rows: list[BetaRow], a: str, b: str) -> BetaRow:
    """The row nearest the utopia point (best of both) after min-max scaling each metric."""
    def scaled(metric: str, r: BetaRow) -> float:
        vals = [x.values[metric] for x in rows]
        lo, hi = min(vals), max(vals)
        return 0.0 if hi == lo else (r.values[metric] - lo) / (hi - lo)

    return min(rows, key=lambda r: math.hypot(scaled(a, r), scaled(b, r)))


# ---------------------------------------------------------------------------------------------
# Pareto front


def pareto_objectives(results: SearchResults) -> tuple[str, str]:
    """(reconstruction quality, coherence) metrics: val/mse against sample FID, or val/elbo without FID."""
    s = results.summary
    fid = "final/eval/fid_sample"
    second = "eval/fid_sample" if fid in s and s[fid].notna().any() else "val/elbo"
    return QUALITY, second


def pareto_front(results: SearchResults):
    """Trials that no other trial beats on both objectives (both minimised), sorted by the first."""
    a, b = pareto_objectives(results)
    s = results.summary
    ca, cb = f"final/{a}", f"final/{b}"
    if ca not in s or cb not in s:
        return s.iloc[0:0], (a, b)
    pts = s[s[ca].notna() & s[cb].notna()]
    keep = []
    for i, r in pts.iterrows():
        dominated = ((pts[ca] <= r[ca]) & (pts[cb] <= r[cb]) & ((pts[ca] < r[ca]) | (pts[cb] < r[cb]))).any()
        if not dominated:
            keep.append(i)
    return pts.loc[keep].sort_values(ca), (a, b)
