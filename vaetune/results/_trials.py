"""A trial's words, the same everywhere (console, MLflow, summary.csv): what it is called
(`#3 β=0.0033 z=4 lr=2e-4`), how it ended, and the one line of its error."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vaetune.results._layout import COMPLETED, DIVERGED, ERRORED, STOPPED

# short names of well-known searched keys (the last part of the dotted key otherwise)
SHORT_KEYS = {"beta": "β", "latent_dim": "z", "warmup_epochs": "warmup", "batch_size": "batch"}


def short_value(value: Any) -> str:
    """2 significant digits, exponent form below 0.001 and from 10^4 (`0.0033`, `2e-4`, `1e8`);
    integers below 10^4 as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value == 0 or not math.isfinite(value):
        return str(int(value)) if value == 0 else str(value)
    if abs(value) < 1e-3 or abs(value) >= 1e4:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if isinstance(value, int):
        return str(value)
    rounded = float(f"{value:.2g}")
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"


def short_keys(keys: list[str]) -> dict[str, str]:
    """Dotted searched keys -> short names, unique among them (the full key where two clash)."""
    short = {k: SHORT_KEYS.get(k.rsplit(".", 1)[-1], k.rsplit(".", 1)[-1]) for k in keys}
    clashing = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {k: (k if s in clashing else s) for k, s in short.items()}


def trial_label(searched: dict[str, Any]) -> str:
    """What a trial tried, e.g. `β=0.0033 z=4 lr=2e-4`: β and z first, then the space's order."""
    names = short_keys(list(searched))
    first = list(SHORT_KEYS)[:2]  # beta, latent_dim: what a VAE search is about

    def rank(key: str) -> int:
        last = key.rsplit(".", 1)[-1]
        return first.index(last) if last in first else len(first)

    order = sorted(searched, key=rank)  # stable: the others keep the space's order
    return " ".join(f"{names[k]}={short_value(searched[k])}" for k in order)


def trial_number(trial) -> int:
    """A Tune trial's number in its search, as in its folder name (run_trial_<id>_<number>_...)."""
    head = str(getattr(trial, "experiment_tag", "") or "").split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def end_status(epochs: int, max_epochs: int, error: str | None = None) -> str:
    """How a trial ended, one word of summary.csv's status column, which the MLflow tag
    vaetune.status carries too: completed, stopped (by the scheduler), diverged or errored."""
    if error is not None:
        return DIVERGED if "DivergedError" in error else ERRORED
    return COMPLETED if epochs >= max_epochs else STOPPED


def status_phrase(status: str, epochs: int) -> str:
    """A status as the console's event line says it: "stopped by ASHA at epoch 4", else the word."""
    return f"stopped by ASHA at epoch {epochs}" if status == STOPPED else status


ERROR_LINE_MAX = 500  # characters of an error's line kept in summary.csv and MLflow tags


def error_line(text: str) -> str:
    """The line of an error's text that says what went wrong: the last one naming an Error or an
    Exception (the exception and its message), else its last line."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if not line.startswith(" ") and ("Error" in line or "Exception" in line):
            return line.strip()[:ERROR_LINE_MAX]
    return (lines[-1].strip() if lines else "error")[:ERROR_LINE_MAX]


def error_summary(trial) -> str:
    """The error line of a Tune trial that failed, from the error file Tune wrote for it."""
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        return error_line(Path(path).read_text())
    return "error"
