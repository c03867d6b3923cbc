"""`vaetune sweep RESULTS_OR_SPACE`: an equal-budget study of one key (β by default) around a
configuration: every value with several seeds, every trial trained to the full train.epochs."""

from __future__ import annotations

import argparse
import shlex

from vaetune.commands._common import add_run_arguments


def register(commands) -> None:
    p = commands.add_parser(
        "sweep", help="equal-budget study of one key (β) around the best configuration, with seeds",
        description="Train one configuration at several values of one key, each with several seeds, every trial "
                    "to the full train.epochs (no early stopping): a table of means ± std that compares like "
                    "with like. The configuration is a finished search's best trial, or a space file's default. "
                    "Seeds change the initialisation, the batch order and the sampling, not the data split.")
    p.add_argument("source", metavar="RESULTS_OR_SPACE",
                   help="results/<name> of a finished search (its best trial), or a search-space YAML file")
    p.add_argument("--key", default=None, help="the dotted key to vary (default train.beta)")
    p.add_argument("--values", default=None,
                   help="comma-separated values, e.g. 1,0.1,0.01 (default for train.beta: 7 log-spaced over "
                        "three decades centred on the configuration's β)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per value: train.seed 0 .. N-1 (default 3)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a key of the configuration, e.g. --set train.epochs=6 (repeatable)")
    add_run_arguments(p)
    p.set_defaults(run=run)


def parse_values(text: str) -> list:
    """`1,0.1,0.01` -> [1, 0.1, 0.01]; each item read as YAML (so words stay words)."""
    from vaetune.errors import UserError
    from vaetune.spec import yaml_load

    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UserError(f"--values: got {text!r}; give a comma-separated list such as 0.01,0.1,1")
    return [yaml_load(item) for item in items]


def run(args: argparse.Namespace) -> int:
    from vaetune.commands.search import run_space
    from vaetune.results import results_dir_for
    from vaetune.search import check_resume, plan_sweep

    values = parse_values(args.values) if args.values is not None else None
    sweep = plan_sweep(args.source, key=args.key, values=values, seeds=args.seeds, overrides=args.overrides)
    config = sweep.space.default_config()
    results = results_dir_for(config.search.storage, config.name)
    if args.resume:
        check_resume(sweep, results)
    shown = ",".join(str(v) for v in sweep.values)
    command = " ".join(["vaetune sweep", shlex.quote(args.source), "--key", sweep.key, "--values", shown,
                        "--seeds", str(sweep.seeds), *(f"--set {shlex.quote(o)}" for o in args.overrides)])
    origin = f"trial {sweep.trial_id} of {sweep.source}" if sweep.trial_id else sweep.source
    print(f"sweep of {sweep.key} over {shown}, {sweep.seeds} seeds each, around {origin}: "
          f"{len(sweep.values) * sweep.seeds} trials of {config.train.epochs} epochs, none stopped early")
    print(f"results: {results}")
    code = run_space(sweep.space, space_file=args.source, overrides=args.overrides, resume=args.resume,
                     address=args.address, verbose=args.tune_output, command=command, state_extra=sweep.state())
    print(f"sweep:   {results}\nreport:  vaetune report {results}")
    return code
