"""The full report of a finished search (HTML, Markdown, CSV), as `vaetune report` writes it.

    python analysis/report.py results/<name> [--out DIR] [--no-mlflow]
"""

from __future__ import annotations

import sys

from vaetune.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
