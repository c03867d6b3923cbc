"""`vaetune report`: a finished search or sweep turned into the KL-weight quality/coherence table,
the rate-distortion plane, what mattered, and the best trial — as one self-contained HTML page,
Markdown with its figures, and CSV, logged to the search's MLflow parent run.

Every comparison of trials is made at one epoch (vaetune.report._epochs): the KL table's rows,
its sentences, the rate-distortion plane and the Pareto front. A search stopped early by ASHA
gives one table per epoch where trials can be compared, the deepest that three rows reached
first; a sweep (`vaetune sweep`) gives means ± std over seeds.

Public API: :func:`build_report` (returns the paths it wrote and the findings), :func:`load_results`,
:func:`kl_table`, :func:`kl_tables`, :func:`sentences`, :func:`pareto_front`, :func:`param_importance`,
:func:`picture_table`. `analysis/*.py` are thin scripts over these. The page's sections:
`SECTIONS`, functions of `PageData` returning a `Section` of parts (`Paragraph`, `Table`, ...).

Layout of `--out` (default `RESULTS/report/`): `report.html`, `report.md`, `figures/*.png`
(the Markdown's images, the same PNGs the HTML carries inline), `kl_table.csv` (every table,
with its `epoch`), `pareto.csv`.
"""

from __future__ import annotations

from vaetune.report._build import (
    REPORT_ARTIFACT_DIR,
    BuiltReport,
    build_report,
    is_report,
    log_to_mlflow,
)
from vaetune.report._importance import Importance, param_importance
from vaetune.report._kltable import KLTable, Row
from vaetune.report._page import SECTIONS, PageData
from vaetune.report._pareto import pareto_front
from vaetune.report._pictures import picture_table
from vaetune.report._render import Notes, Paragraph, Section, Table
from vaetune.report._sentences import sentences
from vaetune.report._table import kl_table, kl_tables
from vaetune.results import SearchResults, load_results

__all__ = [
    "REPORT_ARTIFACT_DIR", "SECTIONS", "BuiltReport", "Importance", "KLTable", "Notes", "PageData", "Paragraph", "Row",
    "SearchResults", "Section", "Table", "build_report", "is_report",
    "kl_table", "kl_tables", "load_results", "log_to_mlflow", "param_importance", "pareto_front", "picture_table",
    "sentences",
]
