"""The notes under a KL-weight table: metrics it lacks and why, how β acted in its rows, and where
its rows come from (a search, not a study, with the `vaetune sweep` command that makes one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vaetune.metrics.registry import get
from vaetune.report._epochs import BETA_IN_EFFECT, CAPACITY, DASH, OBJECTIVE, SCHEDULE
from vaetune.results import TRIAL_ID, SearchResults
from vaetune.search import default_values, evaluation_epochs
from vaetune.spec import BETA

if TYPE_CHECKING:
    from vaetune.report._kltable import KLTable
    from vaetune.spec import SearchPlan


def _labels(metrics: list[str]) -> str:
    return ", ".join(get(m).label for m in metrics)


def _ranking_only(plan: SearchPlan | None, epoch: int | None) -> bool:
    """Whether the trials of `plan` measured only what ranks them at `epoch` (a cheap rung)."""
    if plan is None or epoch is None:
        return False
    _, ranking = evaluation_epochs(plan.config, plan.kept_epochs)
    return epoch in ranking


def missing_notes(results: SearchResults, missing: list[str], epoch: int | None = None) -> list[str]:
    """Why the table's columns `missing` are empty (its rows measured at `epoch`)."""
    notes = []
    config = results.config()
    evals = [m for m in missing if m.startswith("eval/")]
    if evals and config is not None and config.train.fid_every == 0:
        notes.append(f"{_labels(evals)}: {DASH} because the search ran with train.fid_every 0, so "
                     "no FID/KID was computed.")
        evals = []
    unfitted = [m for m in evals if get(m).fitted and config is not None
                and not config.train.fits_prior]
    if unfitted:
        notes.append(f"{_labels(unfitted)}: {DASH} because the search ran with train.prior none, so "
                     "no latent prior was fitted.")
    evals = [m for m in evals if m not in unfitted]
    ranked_only = _ranking_only(results.plan, epoch)
    if evals and ranked_only:
        full, _ = evaluation_epochs(config, results.plan.kept_epochs)
        notes.append(f"{_labels(evals)}: {DASH}, not measured at epoch {epoch}: at ASHA's rungs a trial "
                     f"measures only what ranks it (search.rung_eval: ranking); every measure at epochs "
                     f"{', '.join(map(str, sorted(full)))}.")
        evals = []
    if evals:
        notes.append(f"{_labels(evals)}: {DASH} because no trial reported them (recorded by an "
                     "older vaetune?).")
    others = [m for m in missing if not m.startswith("eval/")]
    if others:
        notes.append(f"{_labels(others)}: {DASH}, not recorded by this search's trials "
                     "(an older vaetune version?).")
    return notes


def schedule_notes(results: SearchResults, table: KLTable) -> list[str]:
    if table.key == CAPACITY:
        return ["Under the capacity objective (train.objective) β is not in the loss (γ·|KL − C|, Burgess et al. "
                "2018): the rows are the capacity target C_max instead of β."]
    if OBJECTIVE in results.searched or SCHEDULE in results.searched:
        named = "; ".join(f"{table.key_label}={r.label}: {r.schedule}" for r in table.rows)
        return [f"{OBJECTIVE if OBJECTIVE in results.searched else SCHEDULE} was searched; how β acted in each row: "
                f"{named}. Under the capacity objective β is not in the loss, so a capacity row's β had no effect "
                "on its training."]
    schedule = table.rows[0].schedule if table.rows else "constant"
    if schedule == "constant" or table.key != BETA:
        return []
    target = dict(zip(table.trials[TRIAL_ID], table.trials[BETA], strict=True)) if BETA in table.trials else {}
    below = [f"β={r.label} ({r.values[BETA_IN_EFFECT]:.3g})" for r in table.rows
             if r.values.get(BETA_IN_EFFECT) is not None
             and abs(r.values[BETA_IN_EFFECT] - target.get(r.trial_id, r.value)) > 1e-6 * abs(target.get(r.trial_id, r.value))]
    note = f"β follows the {schedule} schedule; the table's β is its target value."
    if below:
        note += f" At epoch {table.epoch} the β in effect had not reached it for {', '.join(below)}."
    return [note]


def main_notes(results: SearchResults, key: str, tables: list[KLTable], need: int) -> list[str]:
    main, notes = tables[0], []
    if len(tables) > 1:
        notes.append(f"Epoch {main.epoch} is the deepest epoch that at least {need} rows reached; the tables at "
                     f"epoch {', '.join(str(t.epoch) for t in tables[1:])} follow, each over the rows that reached it.")
    if results.sweep is None:
        hint = f"vaetune sweep {results.folder} --seeds 3"
        if key != BETA:
            centre = main.rows[0].value if main.rows and isinstance(main.rows[0].value, (int, float)) else 1.0
            hint += f" --key {key} --values {','.join(f'{v:g}' for v in default_values(centre or 1.0))}"
        notes.append("This table comes from a search, not a study: each row is one trial (one seed) that the search "
                     "metric picked, and the search trained its trials for different epochs (compared here at one "
                     f"epoch only). For an equal-budget study with seeds around the best configuration: {hint}")
    return notes
