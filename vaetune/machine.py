"""What this machine has (memory, CPUs, GPUs, room on a disk), for the checks made before work starts, and which
torch device a setting names: the one rule for `train.device` and `--device`.

A request that cannot be met here (a trial asking for a GPU on a machine without one, images
that cannot fit in memory, checkpoints a disk has no room for) is refused at once with the figures, instead of waiting for ever or
dying mid-way.
"""

from __future__ import annotations

import os
from pathlib import Path

from vaetune.errors import UserError

_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_bytes() -> int:
    """Physical memory, or the container's memory limit when that is lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no figure to check against
        return 2**63
    for path in _CGROUP_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def cpu_count() -> int:
    """The CPU cores this process may run on (its affinity mask, which a container or `taskset`
    narrows), not every core the machine has."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def gpu_count() -> int:
    """CUDA devices visible to this process."""
    import torch

    return torch.cuda.device_count()


def size(nbytes: float) -> str:
    """A byte count for a person: 1.5 GiB, 29.3 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"  # unreachable; keeps type checkers calm


def check_fits(nbytes: float, what: str, fix: str) -> None:
    """Refuse work whose memory alone exceeds this machine's.

    Args:
        nbytes: the memory the work needs at least.
        what: what needs it, starting with the argument or key, e.g. "--n: 10000000 samples of 3x64x64".
        fix: what the user can change.
    """
    have = memory_bytes()
    if nbytes > have:
        raise UserError(f"{what} need {size(nbytes)} of memory; this machine has {size(have)}; {fix}")


def check_room(folder: str | Path, nbytes: float, what: str, fix: str) -> None:
    """Refuse work that would fill the disk of `folder` (its nearest existing ancestor).

    Args:
        folder: where the work writes.
        nbytes: the bytes it writes at most.
        what: what is written, starting with the key that chose the folder, e.g. "search.storage: ...".
        fix: what the user can change besides freeing space.
    """
    from vaetune.fileio import free_bytes

    free = free_bytes(folder)
    if nbytes > free:
        raise UserError(f"{what} take up to {size(nbytes)}, but {Path(folder).expanduser().absolute()} has "
                        f"{size(free)} free; free space there, or {fix}")


def resolve_device(name, *, what: str = "train.device") -> str:
    """"auto" or None -> "cuda" when a CUDA device is visible, else "cpu"; "cuda"/"cuda:N" only
    where CUDA is visible (a UserError naming `what` otherwise); anything else as given."""
    import torch

    name = "auto" if name is None else str(name)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{what}: got {name!r} but no CUDA device is visible; use auto or cpu")
    return name
