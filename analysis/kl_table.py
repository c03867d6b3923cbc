"""The KL-weight quality/coherence table of a finished search, with its three findings.

    python analysis/kl_table.py results/<name> [--csv kl_table.csv]

Prints the table as Markdown; the report (`vaetune report`) shows it with the picture table.
"""

from __future__ import annotations

import argparse
import sys

from vaetune.errors import UserError
from vaetune.report import kl_table, load_results, sentences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results/<name> folder of a search")
    parser.add_argument("--csv", default=None, help="also write the table as CSV here")
    args = parser.parse_args(argv)
    try:
        table = kl_table(load_results(args.results))
    except UserError as err:
        print(f"kl_table: error: {err}", file=sys.stderr)
        return 2
    print(f"Rows: {table.how}.\n")
    print(table.markdown())
    for note in table.notes:
        print(f"\nNote: {note}")
    print()
    for line in sentences(table).values():
        print(line)
    if args.csv:
        table.frame().to_csv(args.csv, index=False)
        print(f"\nCSV: {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
