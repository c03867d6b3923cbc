"""Which hyperparameters mattered: Optuna's fANOVA importance on the search's own study.

The study (`optuna.db`, named after the search) holds every trial; trials ASHA stopped are
PRUNED there, so fANOVA — which reads COMPLETE trials only — learns from finished trials alone.
A warm-started search's study also holds the earlier search's trials it imported: they count, and
the note says how many.
Too few of them, or a single searched key, gives a note instead of a number that means nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vaetune.results import OPTUNA_FILE, SearchResults, optuna_url

log = logging.getLogger(__name__)
MIN_TRIALS = 3  # fANOVA's random forest on fewer complete trials is noise


@dataclass
class Importance:
    values: dict[str, float] | None  # param -> importance, summing to 1; None when not computed
    target: str
    note: str


def param_importance(results: SearchResults) -> Importance:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    from vaetune.search import IMPORTED_FROM

    db = results.folder / OPTUNA_FILE
    target = results.metric
    if not db.exists():
        return Importance(None, target, "No Optuna study (optuna.db) in the results folder.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=results.name, storage=optuna_url(results.folder))
    except KeyError:
        return Importance(None, target, f"optuna.db holds no study named {results.name!r}.")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
    imported = sum(IMPORTED_FROM in t.user_attrs for t in complete)
    counts = (f"{len(complete)} complete trials ({f'{imported} imported from an earlier search, ' if imported else ''}"
              f"{pruned} pruned by ASHA left out)")
    if len(complete) < MIN_TRIALS:
        return Importance(None, target, f"Importance needs at least {MIN_TRIALS} complete trials; the study has "
                                        f"{counts}. Run more trials (search.num_samples) to see what mattered.")
    multi = len(study.directions) > 1
    varied = {p for t in complete for p in t.params if len({str(u.params.get(p)) for u in complete}) > 1}
    try:
        values = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0),
                                       target=(lambda t: t.values[0]) if multi else None)
    except (RuntimeError, ValueError, ImportError) as exc:
        return Importance(None, target, f"fANOVA failed on {counts}: {exc}")
    note = f"fANOVA (Optuna, seed 0) on {counts}, target {target}."
    if multi:
        note += " Multi-objective study: importance for the first objective."
    if len(varied) <= 1:
        note += (" Only one hyperparameter varies, so its importance is 1 by construction; the learning curves "
                 "and the table say how much it mattered.")
    return Importance(dict(values), target, note)
