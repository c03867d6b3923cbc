"""The KL-weight quality/coherence tables of a finished search or sweep, with their findings.

    python analysis/kl_table.py results/<name> [--csv kl_table.csv]

Prints each table (each at one epoch; the main one first) as Markdown and the main table's
findings; the report (`vaetune report`) shows them with the picture table.
"""

from __future__ import annotations

import argparse
import sys

from vaetune.errors import UserError
from vaetune.report import kl_tables, load_results, sentences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results/<name> folder of a search")
    parser.add_argument("--csv", default=None, help="also write the table as CSV here")
    args = parser.parse_args(argv)
    try:
        tables = kl_tables(load_results(args.results))
    except UserError as err:
        print(f"kl_table: error: {err}", file=sys.stderr)
        return 2
    for i, table in enumerate(tables):
        print(f"{'' if i == 0 else chr(10)}Rows: {table.how}.\n")
        print(table.markdown())
        for note in table.notes:
            print(f"\nNote: {note}")
        if i == 0:
            print()
            for line in sentences(table).values():
                print(line)
    if args.csv:
        import pandas as pd

        pd.concat([t.frame(i + 1) for i, t in enumerate(tables)]).to_csv(args.csv, index=False)
        print(f"\nCSV: {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
