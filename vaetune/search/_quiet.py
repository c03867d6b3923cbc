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
    trial tracebacks (the console names the error and where the traceback is), its list of
    trials that did not complete and its way to resume, and Ray's note on its default token
    authentication."""
    import mlflow  # noqa: F401 - it sets its loggers' level when imported: set ours after
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # Tune's TensorBoard logger warns of every NaN it is given: the eval/ placeholders before a
    # trial's first FID are NaN by design
    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
    tune_controller = logging.getLogger("ray.tune.execution.tune_controller")
    tune_controller.addFilter(_DropMessages("Trial task failed"))
    # after Ctrl-C vaetune names its own command to continue (`--resume`), not Tune's Python call
    logging.getLogger("ray.tune.tune").addFilter(
        _DropMessages("Trials did not complete", "Experiment has been interrupted"))
    # a note that the local Ray instance it starts uses token authentication, Ray's default
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(
        _DropMessages("Token authentication is enabled for this Ray cluster"))
