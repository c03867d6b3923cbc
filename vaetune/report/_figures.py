"""The report's plots, drawn with matplotlib's object API (Agg, no pyplot state), as PNG bytes.

- rate-distortion plane (Alemi et al. 2018) at the KL table's epoch: each trial (a sweep: each
  value, with error bars over seeds) at (KL, reconstruction error), coloured by β on a log scale,
  beside the Pareto front of (val MSE, sample FID or val/elbo);
- hyperparameter importance bars; parallel coordinates of the searched keys and the metric;
- learning curves of every trial with the points where ASHA stopped a trial marked.
"""

from __future__ import annotations

import math
from typing import Any

from vaetune.metrics.registry import EPOCH, VAL_KL, VAL_RECON

DPI = 100


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def png(fig) -> bytes:
    from vaetune.viz import figure_png

    return figure_png(fig)


def _beta_norm(betas):
    from matplotlib.colors import LogNorm, Normalize

    betas = [b for b in betas if b is not None and math.isfinite(b)]
    if betas and min(betas) > 0:
        lo, hi = min(betas), max(betas)
        return LogNorm(vmin=lo / 1.5 if lo == hi else lo, vmax=hi * 1.5 if lo == hi else hi)
    return Normalize(vmin=min(betas, default=0), vmax=max(betas, default=1))


def rate_distortion(points, front, objectives: tuple[str, str], key_label: str, *, joined: bool) -> bytes:
    """Left: rate (val/kl) against distortion (val/recon); right: the Pareto front of `objectives`.

    `points` (KLTable.points(): `label`, `value` of the key, the metrics, `<metric>_std` for a
    sweep) are all measured at one epoch; `joined`: a sweep's rows, drawn with error bars of one
    standard deviation over seeds and joined in the key's order.
    """
    fig = _figure(11, 4.6)
    ax, ax2 = fig.subplots(1, 2)
    values = [float(v) if _is_number(v) else math.nan for v in points["value"]] if len(points) else []
    norm = _beta_norm(values)
    front_labels = set(front["label"]) if len(front) else set()
    sc = None
    for axis, (x, y) in ((ax, (VAL_KL, VAL_RECON)), (ax2, objectives)):
        if x not in points or y not in points:
            continue
        have = points[points[x].notna() & points[y].notna()]
        if have.empty:
            continue
        ordered = have.sort_values("value") if joined else have
        colours = [float(v) if _is_number(v) else math.nan for v in ordered["value"]]
        if joined:
            axis.errorbar(ordered[x], ordered[y], xerr=ordered.get(f"{x}_std"), yerr=ordered.get(f"{y}_std"),
                          fmt="-", color="0.5", lw=1, capsize=3, zorder=2)
        rim = ["crimson" if lbl in front_labels else "black" for lbl in ordered["label"]]
        sc = axis.scatter(ordered[x], ordered[y], c=colours, cmap="viridis", norm=norm, s=60, edgecolors=rim,
                          linewidths=[2.0 if lbl in front_labels else 0.5 for lbl in ordered["label"]], zorder=3)
        for _, r in ordered.iterrows():
            axis.annotate(str(r["label"])[:8], (r[x], r[y]), fontsize=7, xytext=(4, 3), textcoords="offset points",
                          color="0.3")
    a, b = objectives
    if len(front) and a in front and b in front:
        ax2.plot(front[a], front[b], "o", color="crimson", mfc="none", ms=12, lw=1.5, label="Pareto front", zorder=2)
        ax2.legend(loc="best", fontsize=8)
    what = "mean ± std over seeds, joined in order of " + key_label if joined else "one point per trial"
    ax.set_xlabel("rate R = val/kl (nats per image)")
    ax.set_ylabel("distortion D = val/recon (per image)")
    ax.set_title(f"Rate–distortion plane ({what})", fontsize=10)
    ax2.set_xlabel(f"{a} (lower: better reconstructions)")
    ax2.set_ylabel(f"{b} (lower: {'more coherent samples' if 'fid' in b else 'better ELBO'})")
    ax2.set_title("Quality vs " + ("coherence" if "fid" in b else "ELBO") + " (red rim: Pareto front)", fontsize=10)
    for axis in (ax, ax2):
        axis.grid(alpha=0.3)
    if sc is not None:
        fig.colorbar(sc, ax=[ax, ax2], label=key_label)
    return png(fig)


def objective_front(points, a: str, b: str, mode_a: str, mode_b: str) -> bytes:
    """Objective `a` against `b`, one point per trial (`points`: trial_id, both objectives,
    `feasible`, `pareto`): feasible trials as dots, infeasible ones as grey crosses, the Pareto
    front's members ringed and joined in order of `a`."""
    fig = _figure(6.4, 4.8)
    ax = fig.subplots()
    have = points[points[a].notna() & points[b].notna()]
    ok, broke = have[have["feasible"]], have[~have["feasible"]]
    ax.scatter(ok[a], ok[b], s=40, color="tab:blue", zorder=3, label="feasible trial")
    if len(broke):
        ax.scatter(broke[a], broke[b], s=50, marker="x", color="0.55", zorder=3, label="broke a constraint")
    front = have[have["pareto"]].sort_values(a)
    if len(front):
        ax.plot(front[a], front[b], "-o", color="crimson", mfc="none", ms=11, lw=1.5, zorder=2, label="Pareto front")
    for _, r in have.iterrows():
        ax.annotate(str(r["trial_id"])[:8], (r[a], r[b]), fontsize=7, xytext=(4, 3), textcoords="offset points",
                    color="0.3")
    ax.set_xlabel(f"{a} ({'lower' if mode_a == 'min' else 'higher'} is better)")
    ax.set_ylabel(f"{b} ({'lower' if mode_b == 'min' else 'higher'} is better)")
    ax.set_title("The search's objectives, one point per trial", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return png(fig)


def _is_number(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def importance_bars(importances: dict[str, float], target: str) -> bytes:
    fig = _figure(6.5, 0.5 + 0.45 * max(2, len(importances)))
    ax = fig.subplots()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="steelblue")
    for i, n in enumerate(names):
        ax.text(importances[n], i, f" {importances[n]:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(f"fANOVA importance for {target}")
    return png(fig)


def _axis_values(series) -> tuple[list[float], list[str] | None, bool]:
    """A column as floats for a parallel axis: categories -> index, wide positive ranges -> log10."""
    import numpy as np

    try:
        vals = series.astype(float).to_numpy()
    except (TypeError, ValueError):
        cats = sorted({str(v) for v in series})
        return [float(cats.index(str(v))) for v in series], cats, False
    finite = vals[np.isfinite(vals)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() >= 20:
        return list(np.log10(vals)), None, True
    return list(vals), None, False


def parallel_coordinates(summary, params: list[str], metric: str, mode: str) -> bytes:
    """One line per trial across the searched keys and the metric, coloured by the metric."""
    import matplotlib
    import numpy as np

    from vaetune.results import final_column

    col = final_column(metric)
    axes_names = [p for p in params if p in summary] + [metric]
    data = summary[summary[col].notna()] if col in summary else summary.iloc[0:0]
    fig = _figure(max(7.0, 2.2 * len(axes_names)), 4.4)
    ax = fig.subplots()
    if data.empty:
        ax.text(0.5, 0.5, f"no trial reported {metric}", ha="center", va="center")
        ax.set_axis_off()
        return png(fig)
    columns, labels = [], []
    for name in axes_names:
        vals, cats, logged = _axis_values(data[col] if name == metric else data[name])
        vals = np.asarray(vals, dtype=float)
        lo, hi = np.nanmin(vals), np.nanmax(vals)
        columns.append((vals - lo) / (hi - lo) if hi > lo else np.full_like(vals, 0.5))
        if cats:
            labels.append(f"{name}\n({', '.join(cats)})")
        else:
            show = (lambda v: f"{10 ** v:.3g}") if logged else (lambda v: f"{v:.3g}")
            labels.append(f"{name}{' (log)' if logged else ''}\n{show(lo)} … {show(hi)}")
    ys = np.stack(columns, 1)  # (trials, axes)
    metric_vals = data[col].astype(float).to_numpy()
    cmap = matplotlib.colormaps["viridis_r" if mode == "min" else "viridis"]
    norm = matplotlib.colors.Normalize(vmin=metric_vals.min(), vmax=metric_vals.max())
    for i in range(len(ys)):
        ax.plot(range(len(axes_names)), ys[i], color=cmap(norm(metric_vals[i])), lw=2, alpha=0.85)
    for x in range(len(axes_names)):
        ax.axvline(x, color="0.3", lw=0.8)
    ax.set_xticks(range(len(axes_names)), labels, fontsize=8)
    ax.set_yticks([0, 1], ["low", "high"])
    ax.set_xlim(-0.2, len(axes_names) - 0.8)
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label=f"{metric} ({'lower' if mode == 'min' else 'higher'} is better: yellow)")
    ax.set_title("One line per trial; each axis scaled to its range", fontsize=10)
    return png(fig)


def learning_curves(histories: dict[str, Any], summary, metrics: list[str], beta_key: str,
                    rungs: list[int], max_epochs: int) -> bytes:
    """Each metric against epoch for every trial; × marks where ASHA stopped a trial, ! an error."""
    import matplotlib

    metrics = [m for m in metrics if any(m in h for h in histories.values())] or metrics[:1]
    fig = _figure(5.0 * len(metrics), 4.2)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    status = dict(zip(summary["trial_id"].astype(str), summary["status"], strict=False))
    beta = dict(zip(summary["trial_id"].astype(str), summary[beta_key], strict=False)) if beta_key in summary else {}
    norm = _beta_norm(list(beta.values())) if beta else None
    cmap = matplotlib.colormaps["viridis"]
    for ax, metric in zip(axes, metrics, strict=True):
        for i, (trial, h) in enumerate(sorted(histories.items())):
            if metric not in h:
                continue
            pts = h[[EPOCH, metric]].dropna()
            if pts.empty:
                continue
            colour = cmap(norm(float(beta[trial]))) if norm is not None and trial in beta else f"C{i % 10}"
            ax.plot(pts[EPOCH], pts[metric], "-o", ms=3, color=colour, lw=1.3, alpha=0.9)
            end = pts.iloc[-1]
            if status.get(trial) == "stopped":
                ax.plot(end[EPOCH], end[metric], "x", color="crimson", ms=10, mew=2.5, zorder=4)
            elif status.get(trial) == "errored":
                ax.plot(end[EPOCH], end[metric], "s", color="orange", mfc="none", ms=10, mew=2, zorder=4)
        for r in rungs:
            ax.axvline(r, color="0.6", ls=":", lw=1)
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, max(max_epochs, 1) + 0.5)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="x", color="crimson", ls="", ms=8, mew=2, label="stopped by ASHA"),
               Line2D([], [], marker="s", color="orange", mfc="none", ls="", ms=8, label="errored")]
    if rungs:
        handles.append(Line2D([], [], color="0.6", ls=":", label="ASHA rungs"))
    axes[0].legend(handles=handles, fontsize=8, loc="best")
    if norm is not None:
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=list(axes), label="β")
    return png(fig)
