"""Hyperparameter importance (Optuna fANOVA) of a finished search's study.

    python analysis/importance.py results/<name>
"""

from __future__ import annotations

import sys

from vaetune.errors import UserError
from vaetune.report import load_results, param_importance


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        imp = param_importance(load_results(argv[0]))
    except UserError as err:
        print(f"importance: error: {err}", file=sys.stderr)
        return 2
    for name, v in (imp.values or {}).items():
        print(f"{name:30s} {v:.3f}")
    print(imp.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
