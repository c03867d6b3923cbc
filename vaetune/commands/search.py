"""`vaetune search SPACE.yaml`: run a hyperparameter search (Ray Tune + Optuna + ASHA)."""

from __future__ import annotations

import argparse

from vaetune.commands._common import add_run_arguments, add_space_arguments, fmt, warn_unused


def register(commands) -> None:
    p = commands.add_parser("search", help="run a hyperparameter search (Ray Tune + Optuna + ASHA)",
                            description="Run a hyperparameter search of a search-space file.")
    add_space_arguments(p)
    add_run_arguments(p)
    p.add_argument("--warm-start", metavar="RESULTS", default=None,
                   help="start from the finished trials of an earlier search on the same data and space (its "
                        "results folder), told to the sampler without running them again (search.warm_start)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    import shlex

    from vaetune.spec import load_space

    warm = [f"search.warm_start={json.dumps(args.warm_start)}"] if args.warm_start else []
    space = load_space(args.space, args.overrides + warm)
    warn_unused(space)
    return run_space(space, space_file=args.space, overrides=args.overrides + warm,
                     resume=args.resume, address=args.address, verbose=args.tune_output,
                     command=f"vaetune search {args.space}" + (f" --warm-start {shlex.quote(args.warm_start)}"
                                                               if args.warm_start else ""))


def run_space(space, *, space_file: str, overrides: list[str], resume: bool, address: str | None,
              command: str, verbose: bool = False, state_extra: dict | None = None) -> int:
    """Check, record, run and summarise a search; shared by `vaetune search` and `vaetune sweep`.

    Everything that can be checked is checked before Ray starts or a file is written; the
    search's state is written once Ray is up (and a joined cluster can run a trial), and a new
    search that fails before its first trial starts removes it again, so a start that fails leaves
    nothing that changes the next run. A search stopped by a full disk says which and how to go on.
    """
    from vaetune.errors import UserError, disk_full
    from vaetune.results import SEARCH_FILE, hold, move_of, refuse_if_held, results_dir_for
    from vaetune.search import (
        OUTPUT,
        check_space,
        grow_state,
        out_of_space,
        plan_search,
        preflight,
        ray_address,
        ray_temp_dir,
        results_folders,
        resume_changes,
        run_search,
        starting,
        stopped_for,
        summarise,
        terminated,
        warm_start,
        write_state,
    )
    from vaetune.tracking import log_search_outcome

    plan = plan_search(space)  # worked out once: every part below reads it
    config = plan.config
    check_space(plan)
    results = results_dir_for(config.search.storage, config.name)
    refuse_if_held(results, "a search")  # before "already ran": a second start of a running search
    started = (results / SEARCH_FILE).exists()
    if started and not resume:
        raise UserError(f"{results}: a search named {config.name!r} already ran there; continue it with --resume, "
                        f"or change `name:` (or --set name=...) to start a new one")
    if resume and not started:
        raise UserError(f"{results}: --resume given but no search named {config.name!r} was started there")
    moved = move_of(results) if resume else None
    if moved is not None:  # Tune's saved state and searcher, and the MLflow callback, name the old place
        raise UserError(f"--resume: {results} ran at {moved.old} and was moved or copied here since; export and "
                        "report read it here, but a resumed search would write into the old place (Ray Tune's "
                        "saved experiment names it): resume it where it ran, or start a new search here with "
                        "--set name=...")
    changes = resume_changes(results, plan) if resume else []
    refused = [c for c in changes if not c.applicable]
    if refused:
        raise UserError(f"--resume: {results} was started with another space: {'; '.join(map(str, refused))}; a "
                        "resumed search runs the space it started with (only search.num_samples may grow): undo "
                        "the change, or start a new search with --set name=...")
    warm = None if resume else warm_start(plan, results)  # a resumed study holds its imported trials already
    start = None if resume else starting(plan, warm)  # its sampler, and the portfolio points it starts with
    address, named = ray_address(address)
    data, fingerprints = preflight(plan, results, address=address, resume=resume, named=named, warm=warm)

    def record() -> None:  # once Ray is up: the search exists from here on
        if not resume:
            write_state(results, plan, space_file=space_file, overrides=overrides, data=fingerprints,
                        extra={**(state_extra or {}), **(warm.record() if warm is not None else {}),
                               **start[1].record()})
        elif changes:
            before = grow_state(results, plan)
            print(f"--resume: {changes[0]}: the search goes on to {config.search.num_samples} trials "
                  f"({config.search.num_samples - before} more)", flush=True)

    existed = results.exists()
    with hold(results, "a search"):  # until its summary is written: a second start or export is refused
        try:
            grid = run_search(plan, results, address=address, resume=resume, verbose=verbose, data=data,
                              before_fit=record, named=named, command=command, warm=warm, start=start)
            stopped(plan, results, command, resume=resume, existed=existed)
        except Exception as exc:
            started = resume or forget_unstarted(results, existed=existed)
            if disk_full(exc):
                raise out_of_space(results_folders(results, config, ray_temp_dir()[0]), command,
                                   started=started) from None
            raise
        outcome = summarise(grid, plan, results)
        if not outcome.unfinished:  # an interrupted search gets its outcome when it is resumed and ends
            log_search_outcome(results, config.search.metric, config.search.mode, plan.searched)
    if stopped_for(OUTPUT) is not None:  # the reader went away (`| head`): end quietly, as a Unix tool does
        raise BrokenPipeError(stopped_for(OUTPUT))
    print_outcome(outcome, plan.space, results, command)
    code = outcome.exit_code
    return (terminated() or code) if code == 130 else code  # SIGTERM 143, SIGHUP 129


def stopped(plan, results, command: str, *, resume: bool, existed: bool) -> None:
    """If vaetune stopped the search for a full disk (vaetune.search._faults), the one line that
    says which and what to do."""
    from vaetune.search import DISK, out_of_space, ray_temp_dir, results_folders, stopped_for

    if stopped_for(DISK) is not None:
        started = resume or forget_unstarted(results, existed=existed)
        raise out_of_space(results_folders(results, plan.config, ray_temp_dir()[0]), command, started=started)


def forget_unstarted(results, *, existed: bool) -> bool:
    """A new search that stopped before its first trial started is forgotten, so that the same
    command runs it again (not refused as one that "already ran"): its results folder is removed
    (emptied if it was there, empty, before). Returns whether a trial had started."""
    import shutil

    from vaetune.results import TRIALS_FILE

    if (results / TRIALS_FILE).exists():
        return True
    if existed:
        for child in results.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
    else:
        shutil.rmtree(results, ignore_errors=True)
    return False


def print_outcome(outcome, space, results, command: str) -> None:
    from vaetune.ranking import finite_number, has_checkpoint
    from vaetune.results import (
        CHECKPOINT,
        RUN_ID,
        SUMMARY_FILE,
        TRIAL_ID,
        best_column,
        final_column,
        read_tracking,
    )

    if outcome.rows:
        print(f"\n{len(outcome.rows)} trials: " + ", ".join(f"{n} {s}" for s, n in outcome.counts.items()))
    if outcome.imported:
        print(f"{outcome.imported} trials of {outcome.imported_from} imported as observations: not trained here, "
              "nor ranked among this search's trials")
    if outcome.time is not None:
        print(outcome.time.line())
    if outcome.unfinished:
        print(f"search interrupted with {outcome.unfinished} trials to go; continue with: {command} --resume")
    if outcome.front is not None:
        print(outcome.front.text)
    best = outcome.best
    if best is None:
        if outcome.unfinished:
            return
        columns = (best_column(outcome.metric), final_column(outcome.metric))
        measured = sum(any(finite_number(r.get(c)) is not None for c in columns) for r in outcome.rows)
        if outcome.held_to and measured:
            print(f"no trial held {outcome.held_to}: {measured} reported {outcome.metric}, each outside them; "
                  f"see the feasible column of {results / SUMMARY_FILE}")
        else:
            print(f"no trial reported {outcome.metric}; see {results / SUMMARY_FILE} for errors")
        return
    params = ", ".join(f"{k}={fmt(best[k])}" for k in space.params)
    print(f"best trial {best[TRIAL_ID]}{' so far' if outcome.unfinished else ''}: {outcome.metric} = "
          f"{best[best_column(outcome.metric)]:.5g}  ({params})")
    print(f"  checkpoint: {best[CHECKPOINT]}" if has_checkpoint(best) else
          "  checkpoint: none kept, nor by any trial ranked below it: vaetune export has none to give")
    run_id = best[RUN_ID] if isinstance(best[RUN_ID], str) and best[RUN_ID] else None
    store = read_tracking(results).get("uri")  # where this search's runs are
    print(f"  MLflow run: {run_id or 'not recorded yet (MLflow unreachable; sent on --resume)'}"
          + (f" (store {store})" if store else ""))
    print(f"summary: {results / SUMMARY_FILE}\nexport:  vaetune export {results}"
          + (" (the best by the first objective; --pareto lists the front, --trial ID exports one)"
             if outcome.front is not None else ""))
