"""What a dotted name (`vaetune.spec.SearchPlan.kept_epochs`, `ray.tune.search.Searcher`) names:
its longest importable module prefix, then attributes; a dataclass's fields count (their value is
None where the class has no default). Shared by the house rules and the library-faces test."""

from __future__ import annotations

import dataclasses
import importlib

MISSING = object()  # what a name that does not resolve gives


def resolve(dotted: str) -> object:
    """The object `dotted` names, or MISSING."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            fields = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
            if not hasattr(obj, attr) and attr not in fields:
                return MISSING
            obj = getattr(obj, attr, None)
        return obj
    return MISSING
