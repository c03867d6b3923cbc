"""The rate-distortion plane of a finished search or sweep (Alemi et al. 2018) and its Pareto
front, at the KL table's epoch.

    python analysis/rate_distortion.py results/<name> [--out rate_distortion.png]

Writes the plot and prints the Pareto-front points of (val MSE, sample FID — or val/elbo).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vaetune.errors import UserError
from vaetune.report import kl_table, load_results, pareto_front
from vaetune.report._figures import rate_distortion


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results/<name> folder of a search")
    parser.add_argument("--out", default="rate_distortion.png")
    args = parser.parse_args(argv)
    try:
        table = kl_table(load_results(args.results))
    except UserError as err:
        print(f"rate_distortion: error: {err}", file=sys.stderr)
        return 2
    front, (a, b) = pareto_front(table)
    Path(args.out).write_bytes(rate_distortion(table.points(), front, (a, b), table.key_label, joined=table.sweep))
    cols = [c for c in ["label", "value", a, b, "val/kl"] if c in front]
    print(f"Pareto front of ({a}, {b}) at epoch {table.epoch}, {len(front)} of {len(table.points())} points:")
    print(front[cols].to_string(index=False))
    print(f"plot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
