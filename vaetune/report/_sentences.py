"""What the KL table says, in sentences: which β gives the best reconstructions, which the most
coherent samples, and whether (and where) they trade off; which gives the most faithful samples
(precision) and which covers the data best (recall); and at which β samples from the fitted
latent prior beat those from N(0, I). All at the table's one epoch.

A difference is stated only when it is larger than the seeds' spread: two rows are
*indistinguishable* in a metric when the difference of their means is not larger than the
larger of their two standard deviations over seeds (`vaetune.report._kltable.differs`). A row of
one trial (a search, or a sweep with one seed) has no spread: its differences are reported as
untested, never as established.
"""

from __future__ import annotations

import math

from vaetune.metrics.registry import get, of_sampler
from vaetune.report._kltable import KLTable, Row, best_row, differs
from vaetune.samplers import GMM

QUALITY = "val/mse"  # what "best quality" means in the sentences
COHERENCE = ("eval/fid_sample", "eval/kid_sample")  # the first one recorded ranks coherence
FIDELITY, COVERAGE = "eval/precision", "eval/recall"
FIDELITY_WHAT = ("fidelity of samples (precision: the share of samples inside the real images' "
                 "manifold)")
COVERAGE_WHAT = ("coverage of the real images (recall: the share of real images inside the "
                 "samples' manifold)")
SPREAD_RULE = ("indistinguishable in a metric when the difference of their means is within the larger of their "
               "two standard deviations over seeds")


def coherence_metric(table: KLTable) -> str | None:
    return next((m for m in COHERENCE if m not in table.missing), None)


def _v(row: Row, metric: str) -> str:
    v, s = row.values.get(metric), row.spread.get(metric)
    m = get(metric)
    if v is None:
        return "—"
    return m.format(v) + (f" ± {m.format(s)}" if s is not None else "")


def _names(table: KLTable, rows: list[Row]) -> str:
    return ", ".join(f"{table.key_label}={r.label}" for r in rows)


def _tested(table: KLTable) -> bool:
    return table.sweep and all(r.n >= 2 for r in table.rows)


def _peers(table: KLTable, best: Row, metric: str) -> tuple[list[Row], list[Row]]:
    """Rows indistinguishable from the best in `metric`, and rows whose difference is untested."""
    others = [r for r in table.rows if r is not best and r.values.get(metric) is not None]
    same = [r for r in others if differs(r, best, metric) is False]
    untested = [r for r in others if differs(r, best, metric) is None]
    return same, untested


def _best_sentence(table: KLTable, metric: str, what: str, details: str) -> str:
    best = best_row(table.rows, metric)
    at = f"At epoch {table.epoch}"
    if not table.sweep:
        trial = f" (trial {best.trial_id})"
        return f"{at}, the best {what} is at {table.key_label}={best.label}: {details}{trial}."
    same, untested = _peers(table, best, metric)
    label = get(metric).label
    head = f"{at}, the best mean {what} is at {table.key_label}={best.label}: {details} (n={best.n})"
    if same and len(same) == len(table.rows) - 1:
        return (f"{at}, {what} is indistinguishable across {_names(table, table.rows)}: no mean {label} differs "
                f"from the best one ({table.key_label}={best.label}, {_v(best, metric)}) by more than the seeds' "
                "spread.")
    tail = []
    if same:
        tail.append(f"{_names(table, same)} {'is' if len(same) == 1 else 'are'} indistinguishable from it "
                    "(difference within the seeds' spread)")
    if untested:
        tail.append(f"against {_names(table, untested)} the difference is untested (a row with one seed)")
    if not same and not untested:
        tail.append(f"ahead of every other {table.key_label} by more than the seeds' spread")
    return f"{head}; " + "; ".join(tail) + "."


def sentences(table: KLTable) -> dict[str, str]:
    """Which β gives the best quality, the best coherence, and where the trade-off turns."""
    out = {}
    if best_row(table.rows, QUALITY) is None:
        out["quality"] = f"Reconstruction quality: no row recorded val/mse at epoch {table.epoch}."
    else:
        out["quality"] = _best_sentence_q(table)
    cm = coherence_metric(table)
    if cm is None or best_row(table.rows, cm) is None:
        out["coherence"] = ("Coherence of generated images was not measured: no row has a sample FID or KID "
                            f"at epoch {table.epoch} (set train.fid_every > 0 to measure it).")
    else:
        out["coherence"] = _best_sentence_c(table, cm)
    out["tradeoff"] = _tradeoff(table, cm)
    for key, metric, what in (("fidelity", FIDELITY, FIDELITY_WHAT),
                              ("coverage", COVERAGE, COVERAGE_WHAT)):
        if best_row(table.rows, metric) is not None:
            out[key] = _best_sentence(table, metric, what, _pr(table, metric))
    if cm is not None and any(r.values.get(of_sampler(cm, GMM)) is not None for r in table.rows):
        out["prior"] = _fitted_prior(table, cm)
    if not _tested(table):
        out["spread"] = ("Each row rests on one trial (one seed), so the spread over seeds is unknown and no "
                         "difference above is tested against it" + ("" if table.sweep else
                                                                    "; the note above gives the sweep that measures it")
                         + ".")
    return out


def _best_sentence_q(table: KLTable) -> str:
    best = best_row(table.rows, QUALITY)
    details = (f"val MSE {_v(best, 'val/mse')}, PSNR {_v(best, 'val/psnr')} dB, SSIM {_v(best, 'val/ssim')}")
    return _best_sentence(table, QUALITY, "reconstruction quality", details)


def _best_sentence_c(table: KLTable, cm: str) -> str:
    best = best_row(table.rows, cm)
    details = f"sample FID {_v(best, 'eval/fid_sample')}, KID {_v(best, 'eval/kid_sample')}"
    return _best_sentence(table, cm, "coherence of generated samples", details)


def _pr(table: KLTable, metric: str) -> str:
    best = best_row(table.rows, metric)
    return f"precision {_v(best, FIDELITY)}, recall {_v(best, COVERAGE)}"


# how a row's fitted-prior FID compares with its N(0, I) FID, in _fitted_prior's words
_VERDICTS = {"lower": "lower beyond the seeds' spread at ",
             "higher": "higher beyond the seeds' spread at ",
             "within": "within the seeds' spread at ",
             "untested": "untested against the seeds' spread (one seed) at "}


def _fitted_prior(table: KLTable, cm: str) -> str:
    """Where samples decoded from the fitted latent prior beat those from N(0, I), row by row."""
    gm, name = of_sampler(cm, GMM), "FID" if cm == "eval/fid_sample" else "KID"
    rows = [r for r in table.rows if r.values.get(cm) is not None and r.values.get(gm) is not None]
    head = (f"At epoch {table.epoch}, sample {name} with z from the latent prior fitted to the "
            "training set's posterior means, against z ~ N(0, I)")

    def one(r: Row) -> str:
        g, c = r.values[gm], r.values[cm]
        change = round(100 * (g - c) / abs(c)) if c else 0
        return f"{table.key_label}={r.label} ({_v(r, gm)} against {_v(r, cm)}, {change:+d}%)"

    groups: dict[str, list[Row]] = {kind: [] for kind in _VERDICTS}
    for r in rows:
        beyond = differs(r, r, gm, cm) if table.sweep else None
        if beyond is None:
            groups["untested"].append(r)
        elif not beyond:
            groups["within"].append(r)
        else:
            groups["lower" if r.values[gm] < r.values[cm] else "higher"].append(r)
    parts = [_VERDICTS[kind] + ", ".join(one(r) for r in members)
             for kind, members in groups.items() if members]
    if groups["lower"]:
        verdict = f"the fitted prior helps at {_names(table, groups['lower'])}"
    elif groups["untested"]:
        verdict = "whether the fitted prior helps needs seeds (vaetune sweep)"
    else:
        verdict = "the fitted prior helps at no value of this table"
    return f"{head}: {'; '.join(parts)}; {verdict}."


def _contenders(table: KLTable, metric: str) -> list[Row]:
    """The best row and those not shown to be worse (indistinguishable or untested; a search: the best alone)."""
    best = best_row(table.rows, metric)
    if not table.sweep:
        return [best]
    same, untested = _peers(table, best, metric)
    return [best, *same, *untested]


def _tradeoff(table: KLTable, cm: str | None) -> str:
    if len(table.rows) < 2:
        return f"Only one {table.key_label} in this table, so there is no trade-off to read."
    q = best_row(table.rows, QUALITY)
    c = best_row(table.rows, cm) if cm else None
    if q is None or c is None:
        return "The trade-off cannot be located without both val MSE and a sample FID or KID."
    both = [r for r in _contenders(table, QUALITY) if r in _contenders(table, cm)]
    at = f"At epoch {table.epoch}"
    if both:
        if not table.sweep:
            return (f"{at}, no trade-off within these {table.key_label} values: {table.key_label}={q.label} gives "
                    "both the best reconstructions and the most coherent samples.")
        return (f"{at}, no trade-off shows within the seeds' spread: {_names(table, both)} "
                f"{'is' if len(both) == 1 else 'are'} among the best in both reconstruction quality and sample "
                "coherence.")
    name = "FID" if cm == "eval/fid_sample" else "KID"
    beyond = " (both beyond the seeds' spread)" if table.sweep else ""
    head = (f"{at}, going from {table.key_label}={q.label} to {table.key_label}={c.label} raises val MSE by "
            f"{_rise(c.values[QUALITY], q.values[QUALITY])} and lowers sample {name} by "
            f"{_drop(q.values[cm], c.values[cm])}{beyond}.")
    rows = [r for r in table.rows if r.values.get(QUALITY) is not None and r.values.get(cm) is not None]
    turn = knee(rows, QUALITY, cm)
    if turn is q or turn is c:
        return head + (f" The trade-off turns at {table.key_label}={turn.label}, the row closest to the best of "
                       f"both (each column scaled to [0, 1]); no {table.key_label} in between balances them better.")
    return head + (f" The trade-off turns at {table.key_label}={turn.label}: the row closest to the best of both "
                   f"(each column scaled to [0, 1]), with val MSE {_rise(turn.values[QUALITY], q.values[QUALITY])} "
                   f"above the best and sample {name} {_rise(turn.values[cm], c.values[cm])} above the best.")


def _rise(v: float, best: float) -> str:
    return f"{100 * (v - best) / abs(best):.0f}%" if best else f"{v - best:.3g}"


def _drop(before: float, after: float) -> str:
    return f"{100 * (before - after) / abs(before):.0f}%" if before else f"{before - after:.3g}"


def knee(rows: list[Row], a: str, b: str) -> Row:
    """The row nearest the utopia point (best of both) after min-max scaling each metric."""
    def scaled(metric: str, r: Row) -> float:
        vals = [x.values[metric] for x in rows]
        lo, hi = min(vals), max(vals)
        return 0.0 if hi == lo else (r.values[metric] - lo) / (hi - lo)

    return min(rows, key=lambda r: math.hypot(scaled(a, r), scaled(b, r)))
