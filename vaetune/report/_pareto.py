"""The Pareto front of (reconstruction quality, coherence) at the KL table's epoch: the points
no other point beats on both. A search's points are its trials measured at that epoch; a sweep's
are its rows (the means over seeds)."""

from __future__ import annotations

from vaetune.report._kltable import KLTable
from vaetune.report._sentences import QUALITY

FALLBACK = "val/elbo"  # the second objective when no sample FID was measured


def pareto_objectives(points) -> tuple[str, str]:
    """(reconstruction quality, coherence): val/mse against sample FID, or val/elbo without FID."""
    fid = "eval/fid_sample"
    return QUALITY, fid if fid in points and points[fid].notna().any() else FALLBACK


def pareto_front(table: KLTable):
    """(the front's points sorted by the first objective, both lower-is-better; the objectives)."""
    points = table.points()
    a, b = pareto_objectives(points)
    if a not in points or b not in points:
        return points.iloc[0:0], (a, b)
    pts = points[points[a].notna() & points[b].notna()]
    keep = [i for i, r in pts.iterrows()
            if not ((pts[a] <= r[a]) & (pts[b] <= r[b]) & ((pts[a] < r[a]) | (pts[b] < r[b]))).any()]
    return pts.loc[keep].sort_values(a), (a, b)
