"""Rewrite the key reference in docs/search-spaces.md from the code (vaetune.spec.reference_yaml).

    .venv/bin/python scripts/reference.py           # rewrite the block between the page's markers
    .venv/bin/python scripts/reference.py --check   # exit 1 if the page is out of date

Run it after adding a key or changing a default or a field's comment; tests/test_docs.py fails
until the page matches the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vaetune.spec import embed_reference

PAGE = Path(__file__).resolve().parents[1] / "docs" / "search-spaces.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the page is current")
    parser.add_argument("--page", type=Path, default=PAGE, help="the page (default: %(default)s)")
    args = parser.parse_args(argv)
    text = args.page.read_text(encoding="utf-8")
    try:
        current = embed_reference(text)
    except ValueError as err:
        print(f"{args.page}: {err}")
        return 2
    if current == text:
        print(f"{args.page}: the key reference is current")
        return 0
    if args.check:
        print(f"{args.page}: the key reference is out of date; run scripts/reference.py")
        return 1
    args.page.write_text(current, encoding="utf-8")
    print(f"{args.page}: key reference rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
