"""Deterministic train/val/test splits: a function of (split_seed, N, fractions) only.

The split does not depend on the order images were decoded in beyond their index, nor on the
augmentation or cache, so every trial of a search sees the same validation images.
"""

from __future__ import annotations

import torch

from vaetune.spec import SplitConfig

SPLIT_NAMES = ("train", "val", "test")


def split_counts(n: int, split: SplitConfig) -> dict[str, int]:
    """Images per split: val and test rounded from their fractions, train gets the rest.

    A split with a fraction > 0 gets at least one image while N allows it; train always keeps
    one, and val is served before test when there are too few images for all three.
    """
    val = max(round(n * split.val), 1 if split.val > 0 else 0)
    test = max(round(n * split.test), 1 if split.test > 0 else 0)
    while n - val - test < 1 and val + test > 0:
        if test >= val and test > 0:
            test -= 1
        else:
            val -= 1
    return {"train": max(n - val - test, 0), "val": val, "test": test}


def split_indices(n: int, split: SplitConfig, seed: int) -> dict[str, torch.Tensor]:
    """Disjoint, sorted int64 indices of each split, covering range(n)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out, start = {}, 0
    for name, count in split_counts(n, split).items():
        out[name] = perm[start : start + count].sort().values
        start += count
    return out
