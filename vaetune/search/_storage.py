"""Where a search writes, checked before Ray starts: room on the disks it fills, and remote
storage that answers.

- Ray's temporary folder (its sockets and session logs): a full one makes Ray's start time out
  with a message that never mentions space.
- search.storage: room for the checkpoints the plan keeps (every trial run to its end keeps
  `search.keep_checkpoints` plus one per kept epoch, each its weights, the optimiser's two
  moments and that epoch's grids); a remote storage (s3://, gs://) must answer at all, or Ray
  Tune fails once it has started.

Each failure is a `UserError` naming the key or variable, the folder or URI and the fix.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from vaetune.errors import UserError
from vaetune.fileio import is_remote
from vaetune.machine import check_room, size
from vaetune.results import TRIALS_FILE, read_json
from vaetune.spec import SearchPlan

# Ray's session folder of a two-trial search measured 380 KiB here; its logs grow with the trials
RAY_SESSION_ROOM = 32 << 20
STORAGE_TIMEOUT_S = 20.0  # how long remote storage may take to answer its first request


def check_ray_temp_room(folder: str, named: str) -> None:
    """Ray's temporary folder has room for its session (sockets, logs)."""
    check_room(folder, RAY_SESSION_ROOM, f"{named or 'Ray'}: Ray's session files (sockets, logs) under {folder}",
               "set RAY_TMPDIR to a folder with room (e.g. RAY_TMPDIR=/tmp)")


def check_storage_room(plan: SearchPlan, results: Path, data, *, resume: bool) -> None:
    """search.storage has room for the checkpoints of the trials still to run (all of them for a
    new search). `data`: the shared data (None when data.* keys are searched)."""
    s = plan.config.search
    if is_remote(s.storage):
        return
    ended = 0
    if resume:
        ended = sum(t.get("state") == "terminated" for t in read_json(results / TRIALS_FILE).values())
    trials = max(plan.trials - ended, 0)
    kept = min(s.keep_checkpoints + len(plan.kept_epochs) + 1, plan.max_epochs)  # + the latest, while it runs
    each = largest_checkpoint(plan, data)
    check_room(s.storage, trials * kept * each,
               f"search.storage: the checkpoints of {trials} trials ({kept} each, up to {size(each)} apiece)",
               "lower search.num_samples or search.keep_checkpoints, or set search.storage to a folder with room")


def largest_checkpoint(plan: SearchPlan, data) -> int:
    """The bytes of the largest checkpoint a trial of the plan writes: that of the space's largest
    searched model and image settings (vaetune.train.checkpoint_bytes)."""
    from vaetune.train import checkpoint_bytes

    largest = {}
    for key, dist in plan.space.params.items():
        numbers = [v for v in dist.candidates() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if key.startswith(("model.", "data.image_size", "data.channels")) and numbers:
            largest[key] = max(numbers)
    config = plan.space.resolve(largest)
    classes = data.num_classes if data is not None and config.model.conditional else int(config.model.conditional)
    return checkpoint_bytes(config, classes)


def check_remote_storage(storage: str) -> None:
    """A remote search.storage answers within STORAGE_TIMEOUT_S, through the filesystem Ray Tune
    itself opens it with (pyarrow's)."""
    if not is_remote(storage) or storage.startswith("file://"):
        return
    import pyarrow.fs

    def probe() -> None:
        fs, path = pyarrow.fs.FileSystem.from_uri(storage)
        fs.get_file_info(path)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(probe).result(timeout=STORAGE_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        raise UserError(f"search.storage: {storage} did not answer within {STORAGE_TIMEOUT_S:g} s; check its endpoint "
                        "and network, or use a local folder") from None
    except Exception as exc:  # pyarrow's OSError or ArrowInvalid, with the service's words
        first = " ".join(str(exc).split())[:300]
        raise UserError(f"search.storage: cannot reach {storage} ({first}); check the endpoint, the bucket and the "
                        "credentials (e.g. AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID), or use a local folder") from None
    finally:
        pool.shutdown(wait=False)
