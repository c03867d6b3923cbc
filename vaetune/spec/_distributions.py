"""Searched hyperparameters: a distribution written in YAML as a one-key mapping, e.g.
``beta: {loguniform: [0.001, 10]}``, its default for `vaetune train`, and its Tune and Optuna
equivalents."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from vaetune.spec._errors import SpecError

DISTRIBUTIONS = ("loguniform", "uniform", "quniform", "randint", "choice", "grid")


class Distribution(BaseModel):
    """One searched hyperparameter: a kind and its arguments, as written in the YAML."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["loguniform", "uniform", "quniform", "randint", "choice", "grid"]
    args: tuple[Any, ...]

    def default(self) -> Any:
        """The value `vaetune train` uses for this parameter (documented in docs/search-spaces.md)."""
        a = self.args
        if self.kind in ("choice", "grid"):
            return a[0]
        if self.kind == "loguniform":
            return math.sqrt(a[0] * a[1])
        if self.kind == "uniform":
            return (a[0] + a[1]) / 2
        if self.kind == "quniform":
            return round(((a[0] + a[1]) / 2) / a[2]) * a[2]
        return (a[0] + a[1] - 1) // 2  # randint: [low, high)

    def candidates(self) -> list[Any]:
        """Values that must all be valid for the distribution to be: its bounds or choices."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        if self.kind == "randint":
            return [self.args[0], self.args[1] - 1]
        return [self.args[0], self.args[1]]

    def to_tune(self):
        """The equivalent `ray.tune` search-space object."""
        from ray import tune

        a = self.args
        return {
            "loguniform": lambda: tune.loguniform(a[0], a[1]),
            "uniform": lambda: tune.uniform(a[0], a[1]),
            "quniform": lambda: tune.quniform(a[0], a[1], a[2]),
            "randint": lambda: tune.randint(a[0], a[1]),
            "choice": lambda: tune.choice(list(a)),
            "grid": lambda: tune.grid_search(list(a)),
        }[self.kind]()

    def to_optuna(self):
        """The equivalent Optuna distribution, as the search's study records the key (a grid list is
        categorical to Optuna: the grid sampler enumerates it; randint's high is excluded)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        a = self.args
        return {
            "loguniform": lambda: FloatDistribution(a[0], a[1], log=True),
            "uniform": lambda: FloatDistribution(a[0], a[1]),
            "quniform": lambda: FloatDistribution(a[0], a[1], step=a[2]),
            "randint": lambda: IntDistribution(a[0], a[1] - 1),
            "choice": lambda: CategoricalDistribution(list(a)),
            "grid": lambda: CategoricalDistribution(list(a)),
        }[self.kind]()


def parse_distribution(source: str, key: str, node: dict) -> Distribution:
    """The distribution a one-key mapping describes, its arguments checked (SpecError if wrong)."""
    (kind, args), = node.items()
    if not isinstance(args, list):
        raise SpecError(source, key, node, f"{kind} takes a list, e.g. {{{kind}: [low, high]}}")
    numeric = kind in ("loguniform", "uniform", "quniform", "randint")
    if numeric:
        want = 3 if kind == "quniform" else 2
        if len(args) != want or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in args):
            shape = "[low, high, q]" if kind == "quniform" else "[low, high]"
            raise SpecError(source, key, node, f"{kind} takes {shape} numbers")
        low, high = args[0], args[1]
        if low >= high:  # equal bounds leave one value: nothing to search
            raise SpecError(source, key, node, f"{kind} needs low < high (got low={low}, high={high}); to fix the "
                            f"value, write {key.rsplit('.', 1)[-1]}: {low}")
        if kind == "randint" and high == low + 1:
            raise SpecError(source, key, node, f"randint [low, high) excludes high, so [{low}, {high}] holds only "
                            f"{low}; give high > low + 1, or fix the value")
        if kind == "quniform" and args[2] > high - low:
            raise SpecError(source, key, node, f"quniform's step q={args[2]} is wider than [{low}, {high}], so it "
                            "holds one value; give a smaller q")
        if kind == "loguniform" and low <= 0:
            raise SpecError(source, key, node, "loguniform needs 0 < low < high")
        if kind == "randint" and not all(isinstance(v, int) for v in args):
            raise SpecError(source, key, node, "randint takes integers [low, high), high excluded")
        if kind == "quniform" and args[2] <= 0:
            raise SpecError(source, key, node, "quniform needs q > 0")
    elif not args:
        raise SpecError(source, key, node, f"{kind} needs at least one value")
    return Distribution(kind=kind, args=tuple(args))


def is_distribution(node: Any) -> bool:
    """Whether a YAML node is a distribution: a mapping with one key naming a kind."""
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in DISTRIBUTIONS
