"""What the console tells, the libraries need not repeat: their INFO lines and trial tracebacks."""

from __future__ import annotations

import logging

# ---------------------------------------------------------------------------------------------
# Quieter libraries


class _DropMessages(logging.Filter):
    def __init__(self, *prefixes: str):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_libraries() -> None:
    """What the console tells, the libraries need not: Optuna's and MLflow's INFO lines, Tune's
    trial tracebacks (the console names the error and where the traceback is) and its list of
    trials that did not complete."""
    import mlflow  # noqa: F401 - it sets its loggers' level when imported: set ours after
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # Tune's TensorBoard logger warns of every NaN it is given: the eval/ placeholders before a
    # trial's first FID are NaN by design
    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
    tune_controller = logging.getLogger("ray.tune.execution.tune_controller")
    tune_controller.addFilter(_DropMessages("Trial task failed"))
    logging.getLogger("ray.tune.tune").addFilter(_DropMessages("Trials did not complete"))
