"""`vaetune report` writing its folder: the page as HTML and Markdown with its figures, the
tables as CSV, and the folder logged to the search's MLflow parent run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from vaetune.report._page import assemble
from vaetune.report._render import GENERATOR, to_html, to_markdown
from vaetune.report._sentences import sentences
from vaetune.results import REPORT_DIR, SearchResults, load_results, move_of

log = logging.getLogger(__name__)
REPORT_ARTIFACT_DIR = REPORT_DIR  # the report's folder in the parent run's artifacts
HTML_FILE, MARKDOWN_FILE = "report.html", "report.md"


@dataclass
class BuiltReport:
    paths: dict[str, str]  # "html", "markdown", "kl_table", "pareto" -> file
    findings: list[str]  # the table's sentences
    mlflow_run: str | None  # the parent run it was logged to


def build_report(results_dir: str | Path, out: str | Path | None = None, *, mlflow: bool = True,
                 pictures: int = 6) -> BuiltReport:
    """Write the report of a finished search (default folder: RESULTS/report/)."""
    results = load_results(results_dir)
    out = Path(out) if out else results.folder / REPORT_DIR
    (out / "figures").mkdir(parents=True, exist_ok=True)
    import pandas as pd

    report, tables, front = assemble(results, pictures=pictures)
    for name, png in report.figures.items():
        (out / "figures" / f"{name}.png").write_bytes(png)
    html_path, md_path = out / HTML_FILE, out / MARKDOWN_FILE
    html_path.write_text(to_html(report), encoding="utf-8")
    md_path.write_text(to_markdown(report), encoding="utf-8")
    pd.concat([t.frame(i + 1) for i, t in enumerate(tables)]).to_csv(out / "kl_table.csv", index=False)
    front.to_csv(out / "pareto.csv", index=False)
    paths = {"html": str(html_path), "markdown": str(md_path), "kl_table": str(out / "kl_table.csv"),
             "pareto": str(out / "pareto.csv")}
    findings = list(sentences(tables[0]).values())
    return BuiltReport(paths, findings, log_to_mlflow(results, out) if mlflow else None)


def is_report(folder: Path) -> bool:
    """Whether a folder holds a report vaetune wrote (its report.html carries the generator mark)."""
    try:
        with (Path(folder) / HTML_FILE).open(encoding="utf-8", errors="replace") as f:
            return GENERATOR in f.read(4096)
    except OSError:
        return False


def log_to_mlflow(results: SearchResults, folder: Path) -> str | None:
    """Log the report folder to the search's MLflow parent run (artifacts under report/)."""
    run_id, uri = results.tracking.get("parent_run_id"), results.tracking.get("uri")
    if not run_id or not uri:
        log.warning("%s: no tracking.json with a parent run; the report is not logged to MLflow", results.folder)
        return None
    from mlflow.tracking import MlflowClient

    from vaetune.tracking import left_behind

    try:
        client = MlflowClient(tracking_uri=uri)
        old = left_behind(client.get_run(run_id).info.artifact_uri, move_of(results.folder))
        if old:
            log.warning("the MLflow store moved with this search's project, but MLflow keeps the run's artifacts at "
                        "%s (it records absolute paths); the report is not logged to MLflow; the files are in %s",
                        old, folder)
            return None
        client.log_artifacts(run_id, str(folder), artifact_path=REPORT_ARTIFACT_DIR)
        client.set_tag(run_id, "vaetune.report", f"{REPORT_ARTIFACT_DIR}/{HTML_FILE}")
    except Exception as exc:  # the files are written; a tracking outage must not lose them
        log.warning("logging the report to MLflow run %s at %s failed (%s: %s); the files are in %s",
                    run_id, uri, type(exc).__name__, str(exc).splitlines()[0][:200], folder)
        return None
    return run_id


