"""`vaetune report RESULTS`: the KL-weight table, rate-distortion plane and HTML report of a search."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser("report", help="KL-weight table, rate-distortion plot and HTML report",
                            description="Turn a finished search into the KL-weight quality/coherence table, the "
                                        "rate-distortion plane and an HTML report.")
    p.add_argument("results", help="results/<name> folder of a search")
    p.add_argument("--out", default=None, help="output folder (default RESULTS/report)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report to the search's MLflow run")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import time

    from vaetune.outputs import output_folder
    from vaetune.report import REPORT_ARTIFACT_DIR, build_report, is_report

    if args.out:  # the default, RESULTS/report/, is inside the search's own folder
        output_folder(args.out, what="--out", ours=is_report)
    t0 = time.perf_counter()
    built = build_report(args.results, args.out, mlflow=not args.no_mlflow)
    for line in built.findings:
        print(line)
    for kind, path in built.paths.items():
        print(f"{kind:10s} {path}")
    if built.mlflow_run:
        print(f"logged to MLflow run {built.mlflow_run} under {REPORT_ARTIFACT_DIR}/")
    print(f"report written in {time.perf_counter() - t0:.1f}s")
    return 0
