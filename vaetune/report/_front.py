"""The report's section on a multi-objective search (`search.metrics`): its objectives against
each other at the KL table's epoch, the feasible trials no other beats on both (the Pareto front,
vaetune.results.non_dominated), a picture per member, and what the front's numbers carry.

Every trial is one point measured at one epoch (like with like: for a search with early stopping
the table's epoch, where every compared trial was measured); feasibility is decided there too,
from the same measurements. Each point is one trial of one seed, so the sentences describe these
trials and claim no trend beyond them.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import vaetune.report._figures as _figures
from vaetune.ranking import describe, feasible, finite_number, non_dominated
from vaetune.report._epochs import at_epoch
from vaetune.report._pictures import pictures_parts
from vaetune.report._render import Figure, Finding, Notes, Paragraph, Section, Table
from vaetune.results import TRIAL_ID, SearchResults

EXTRA = ("val/kl", "val/active_units")  # beside the objectives in the front's table
STEEP = 3.0  # a step along the front is lopsided when one objective moves this many times the other


def front_points(results: SearchResults, epoch: int):
    """(every trial measured at `epoch` with `feasible` and `pareto` columns, the objectives)."""
    objectives = results.objectives
    metrics = tuple(dict.fromkeys([*(m for m, _ in objectives), *results.constraints, *EXTRA]))
    points = at_epoch(results, epoch, metrics)
    points["feasible"] = feasible(points, results.constraints)
    points["pareto"] = non_dominated(points, objectives, among=points["feasible"])
    return points, objectives


def front_section(results: SearchResults, epoch: int, figures: dict, n_pictures: int) -> Section | None:
    """The section, or None for a search of one objective."""
    if len(results.objectives) < 2:
        return None
    points, objectives = front_points(results, epoch)
    (a, mode_a), (b, mode_b) = objectives[:2]
    front = points[points["pareto"]].sort_values(a, ascending=(mode_a == "min"), kind="stable")
    figures["front"] = _figures.objective_front(points, a, b, mode_a, mode_b)
    who = (f"of the trials that held {describe(results.constraints)}, those no other of them beats"
           if results.constraints else "the trials no other trial beats")
    broke = int((~points["feasible"]).sum())
    parts: list = [Paragraph(
        f"The search's objectives, {a} ({mode_a}) against {b} ({mode_b}), for each of the {len(points)} trials "
        f"measured at epoch {epoch}. The Pareto front (joined): {who} on both"
        + (f"; the {broke} that broke the constraints are marked ×." if broke else "."))]
    parts.append(Figure("front", "objectives and Pareto front"))
    extra = [m for m in EXTRA if m not in (a, b)]
    searched = [p for p in results.searched if p in front]
    rows = [[str(r[TRIAL_ID]), *(_cell(r[p]) for p in searched), *(_cell(r[m]) for m in (a, b, *extra)), str(epoch)]
            for _, r in front.iterrows()]
    parts.append(Paragraph(f"The front's {len(rows)} member{'s' * (len(rows) != 1)}, from the best {a} to the best "
                           f"{b}:" if len(rows) > 1 else f"The front's {len(rows)} member{'s' * (len(rows) != 1)}:"))
    parts.append(Table(["trial", *searched, a, b, *extra, "epoch"], rows, left=1 + len(searched)))
    members = [SimpleNamespace(checkpoint=r["checkpoint"], label=str(r[TRIAL_ID]), trial_id=str(r[TRIAL_ID]))
               for _, r in front.iterrows()]
    parts += pictures_parts(members, figures, n_pictures, epoch, "trial", each="each member's model", whose="",
                            prefix="front")
    parts += [Finding(line) for line in front_sentences(front, searched, (a, mode_a), (b, mode_b))]
    parts.append(Notes(["Each point is one trial of one seed: the front describes these trials, and its spread over "
                        "seeds is not measured (an equal-budget sweep with seeds measures it: `vaetune sweep`)."]))
    return Section("Quality against coherence: the Pareto front", parts)


def front_sentences(front, searched: list[str], first: tuple[str, str], second: tuple[str, str]) -> list[str]:
    """What the front's numbers carry: which searched keys move along it (in one direction or
    not), and the steps where one objective moves STEEP times more than the other (each measured
    as a share of its range over the front)."""
    (a, _), (b, _) = first, second
    if len(front) < 2:
        return [f"The front has {len(front)} member{'s' * (len(front) != 1)}: one trial is at least as good as "
                "every other on both objectives, so there is no trade-off to read."] if len(front) else []
    out = []
    for p in searched:
        values = list(front[p])
        numbers = [finite_number(v) for v in values]
        if all(v is not None for v in numbers):
            if len(set(numbers)) == 1:
                out.append(f"{p} is {_cell(values[0])} on the whole front: it does not move along it.")
                continue
            steps = [y - x for x, y in zip(numbers, numbers[1:], strict=False)]
            if all(s >= 0 for s in steps) or all(s <= 0 for s in steps):
                way = "rises" if numbers[-1] > numbers[0] else "falls"
                out.append(f"From the best {a} to the best {b}, {p} {way} from {_cell(values[0])} to "
                           f"{_cell(values[-1])}, in one direction at every step.")
            else:
                out.append(f"{p} moves along the front but not in one direction "
                           f"({', '.join(_cell(v) for v in values)}).")
        else:
            out.append(f"{p} along the front: {', '.join(map(str, values))}.")
    span_a = float(front[a].max() - front[a].min()) or 1.0
    span_b = float(front[b].max() - front[b].min()) or 1.0
    ids = [str(t) for t in front[TRIAL_ID]]
    lopsided = len(out)
    for i in range(len(front) - 1):
        da = abs(float(front[a].iloc[i + 1] - front[a].iloc[i])) / span_a
        db = abs(float(front[b].iloc[i + 1] - front[b].iloc[i])) / span_b
        step = f"From trial {ids[i]} to trial {ids[i + 1]}"
        if da >= STEEP * db:
            out.append(f"{step}, {a} gets worse by {da:.0%} of its range on the front while {b} gets better by "
                       f"only {db:.0%} of its range: that step costs much of {a} for little of {b}.")
        elif db >= STEEP * da:
            out.append(f"{step}, {b} gets better by {db:.0%} of its range on the front while {a} gets worse by "
                       f"only {da:.0%} of its range: that step buys much of {b} for little of {a}.")
    if len(out) == lopsided:
        out.append(f"No step between neighbours on the front moves one objective {STEEP:g}× as far as the other "
                   "(each as a share of its range on the front): along it the two trade in like measure.")
    return out



def _cell(v) -> str:
    n = finite_number(v)
    if n is None:
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    return f"{n:.4g}"
