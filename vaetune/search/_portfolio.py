"""The portfolio: configurations that did well on other image collections, tried first.

A search of 8-24 trials spends its first third on random trials (vaetune.search._sampler), and
so relearns what every earlier search already knew. The portfolio (`portfolio.csv`, package data
beside this module) is a short list of configurations chosen offline, greedily, to minimise the
regret summed over several real collections (benchmarks/bench_portfolio.py rebuilds it from the
offline table of benchmarks/bench_rungs.py, and says how it was chosen). With `search.sampler:
auto` and `search.portfolio: auto` (the default), a new search's random start-up trials are
portfolio points instead: the space's own `points_to_evaluate` first, then as many portfolio
points as the random start-up trials it would have drawn (all the trials when too few to model),
then the model-based sampler, which counts every one of them among its observations. The
console's first line says how many (`portfolio: 2 points, then sampler TPE ...`).

A portfolio point is projected into the space it starts: a key the space searches takes the
point's value, clipped into its range (a choice: the nearest choice); a key the space does not
search keeps the space's value; a searched key the point lacks takes its default, as a starting
point's does. A point applies only where the space reconstructs and encodes as the portfolio was
learned (`CONDITIONS`: β means another trade-off under another reconstruction loss, and a width
another network under another architecture); points that fall on one another after projection,
or on a starting point, run once. `search.portfolio: none`, or a sampler named, turns it off.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from vaetune.search._sampler import Imported, SamplerChoice, choose_sampler
from vaetune.spec import Distribution, SearchPlan, flatten

PORTFOLIO_FILE = "portfolio.csv"  # package data of vaetune.search; written by benchmarks/bench_portfolio.py
PORTFOLIO_KEY = "portfolio"  # search.json: {points: [the portfolio points enqueued]} or {none: why}
SHIPPED, OFF = "auto", "none"  # search.portfolio's words: the shipped portfolio, none (else a file's path)
# what a point was learned under: a space whose value differs (fixed, or not searched over it) takes none
CONDITIONS = ("model.arch", "train.recon_loss")
RANK = "rank"  # the portfolio file's columns besides the keys: its greedy order
REGRET = "regret"  # the summed relative regret over the collections once it was added
LEARNED_ON = "learned_on"  # the collections (and their image size) it was chosen on


@dataclass(frozen=True)
class Portfolio:
    """Configurations in the greedy order they were chosen (each a {dotted key: value}), what they
    were learned under (`conditions`) and on (`learned_on`)."""

    points: tuple[dict[str, Any], ...]
    conditions: dict[str, Any]
    learned_on: str = ""


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_portfolio(path: Path | None = None) -> Portfolio:
    """The shipped portfolio, or the one in `path` (the same columns); ValueError naming what is
    wrong with a file that is not one."""
    if path is None:
        text = resources.files("vaetune.search").joinpath(PORTFOLIO_FILE).read_text()
    else:
        text = Path(path).read_text()
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or RANK not in rows[0] or not any("." in k for k in rows[0]):
        raise ValueError(f"no {RANK} column and dotted-key columns (e.g. train.beta) with a row under them")
    try:
        rows.sort(key=lambda r: int(r[RANK]))
    except (TypeError, ValueError):
        raise ValueError(f"a {RANK} that is not a whole number") from None
    keys = [k for k in rows[0] if "." in k]
    conditions = {k: _value(rows[0][k]) for k in keys if k in CONDITIONS}
    points = tuple({k: _value(r[k]) for k in keys if k not in CONDITIONS and r[k] not in ("", None)} for r in rows)
    return Portfolio(points, conditions, rows[0].get(LEARNED_ON) or "")


def project(point: dict[str, Any], params: dict[str, Distribution]) -> dict[str, Any]:
    """The point's values of the searched keys, each made one the key's distribution can draw."""
    out = {}
    for key, value in point.items():
        d = params.get(key)
        if d is not None:
            fitted = _fit(value, d)
            if fitted is not None:
                out[key] = fitted
    return out


def _fit(value: Any, d: Distribution) -> Any:
    a = d.args
    if d.kind in ("choice", "grid"):
        if value in a:
            return value
        numeric = [c for c in a if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if not numeric or not isinstance(value, (int, float)):
            return None  # no nearest choice: the default
        scale = (lambda x: math.log(x)) if value > 0 and all(c > 0 for c in numeric) else (lambda x: x)
        return min(numeric, key=lambda c: abs(scale(c) - scale(value)))
    if not isinstance(value, (int, float)):
        return None
    if d.kind == "randint":
        return min(max(round(value), a[0]), a[1] - 1)
    clipped = min(max(float(value), a[0]), a[1])
    if d.kind == "quniform":
        clipped = min(max(round(clipped / a[2]) * a[2], a[0]), a[1])
    return clipped


@dataclass(frozen=True)
class PortfolioStart:
    """The portfolio points a new search starts with (every searched key given), or why none."""

    points: tuple[dict[str, Any], ...] = ()
    why_none: str = ""

    def record(self) -> dict[str, Any]:
        """What search.json keeps of it."""
        return {PORTFOLIO_KEY: {"points": list(self.points)} if self.points else {"none": self.why_none}}


def portfolio_start(plan: SearchPlan, choice: SamplerChoice, portfolio: Portfolio | None = None,
                    ran: tuple[dict[str, Any], ...] = ()) -> PortfolioStart:
    """The points of `portfolio` (None: the shipped one) that take the place of the random start-up
    trials of `choice`, projected into the plan's space, none of them one that `ran` (a warm
    start's imported trials) holds; none where the search turns it off, runs a named sampler or
    the grid, or where the space breaks the portfolio's conditions."""
    s = plan.config.search
    if s.portfolio == OFF:
        return PortfolioStart(why_none="search.portfolio is none")
    if s.sampler != "auto" or choice.name == "grid":
        return PortfolioStart(why_none=f"search.sampler {s.sampler}" if s.sampler != "auto" else "a grid search")
    own = len(s.points_to_evaluate)
    slots = plan.trials - own if choice.name == "random" else choice.startup - own
    if slots <= 0:
        return PortfolioStart(why_none="no random start-up trial to replace")
    if portfolio is None:
        portfolio = read_portfolio(None if s.portfolio == SHIPPED else Path(s.portfolio))
    fixed = flatten(plan.config)
    for key, value in portfolio.conditions.items():
        d = plan.space.params.get(key)
        if (d is None and fixed.get(key) != value) or (d is not None and value not in d.candidates()):
            return PortfolioStart(why_none=f"the portfolio was learned with {key} {value}, this space has "
                                           f"{fixed.get(key) if d is None else list(d.candidates())}")
    defaults = {k: d.default() for k, d in plan.space.params.items()}
    seen = [{**defaults, **p} for p in s.points_to_evaluate] + [{**defaults, **p} for p in ran]
    points: list[dict[str, Any]] = []
    for point in portfolio.points:
        full = {**defaults, **project(point, plan.space.params),
                **{k: v for k, v in portfolio.conditions.items() if k in plan.space.params}}
        if full not in seen:
            seen.append(full)
            points.append(full)
        if len(points) == slots:
            break
    return PortfolioStart(tuple(points), "" if points else "every portfolio point is a starting point already")


def starting(plan: SearchPlan, warm=None, portfolio: Portfolio | None = None) -> tuple[SamplerChoice, PortfolioStart]:
    """How a new search starts: its sampler (vaetune.search._sampler, its study holding the
    imported trials of a `warm` start, vaetune.search._warm) and the portfolio points that take its
    random start-up trials' place (none an imported trial ran)."""
    choice = choose_sampler(plan, imported=warm.imported if warm is not None else Imported())
    ran = tuple(dict(t.params) for t in warm.trials) if warm is not None else ()
    start = portfolio_start(plan, choice, portfolio, ran)
    k = len(start.points)
    if not k:
        return choice, start
    own = len(plan.config.search.points_to_evaluate)
    return replace(choice, portfolio=k, random=max(0, choice.startup - own - k)), start
