"""Shared pieces of the benchmarks: interleaved A/B repetitions, ratio rows, the machine line.

Every figure is a ratio of two variants measured side by side in one run: repetition i runs
every variant once, in an order that rotates between repetitions, so slow phases of a busy
machine hit all variants alike. A row reports the median of the per-repetition ratios and
their spread (min, max), never a ratio of separately measured medians.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RAY_WORKER_NICENESS = 15  # Ray's raylet starts workers at nice 15; local variants match it

FIELDS = ["section", "figure", "a", "b", "a_value", "b_value", "unit", "ratio", "ratio_min", "ratio_max",
          "reps", "goal", "note"]


def interleave(variants: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[Any]]:
    """Run each variant once per repetition, rotating the order; returns name -> results."""
    names = list(variants)
    out: dict[str, list[Any]] = {n: [] for n in names}
    for r in range(reps):
        for n in names[r % len(names):] + names[:r % len(names)]:
            out[n].append(variants[n]())
    return out


def ratio_row(section: str, figure: str, a: str, a_values: list[float], b: str, b_values: list[float], *,
              unit: str = "", goal: str = "", note: str = "") -> dict[str, Any]:
    """One row: medians of a and b, and the median (min, max) of the per-repetition ratios a/b."""
    ratios = [x / y for x, y in zip(a_values, b_values, strict=True) if y]
    return {
        "section": section, "figure": figure, "a": a, "b": b,
        "a_value": statistics.median(a_values), "b_value": statistics.median(b_values), "unit": unit,
        "ratio": statistics.median(ratios) if ratios else float("nan"),
        "ratio_min": min(ratios) if ratios else float("nan"),
        "ratio_max": max(ratios) if ratios else float("nan"),
        "reps": len(ratios), "goal": goal, "note": note,
    }


def machine() -> str:
    """One line: CPU count, torch version and threads, load average (the noise the ratios face)."""
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()} {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}, "
            f"Python {platform.python_version()}, load average {load:.1f} at start")


def nice_worker() -> None:
    """preexec_fn of worker processes: the niceness Ray gives trial workers."""
    os.nice(RAY_WORKER_NICENESS)


def run_worker(args: list[str], *, timeout: float = 900, env: dict | None = None) -> str:
    """Run `python args...` from the repository root at Ray's worker niceness; returns stdout."""
    proc = subprocess.run([PYTHON, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=nice_worker, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def timer() -> Callable[[], float]:
    start = time.perf_counter()
    return lambda: time.perf_counter() - start
