"""The one evaluator of the peers section (bench_peers.py): a search's incumbents and their sample FID.

A search's incumbent at a moment is the model it would hand its user then: the trial-epoch with the
best value of the search's own metric so far, measured at that epoch, with its checkpoint (read
from the Ray Tune result.json files every method writes). Every incumbent of every method is
re-measured by one `Evaluator`, after the searches, so its time is no method's.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EVAL_SEED = 0  # one generator seed: every model decodes the same z


def measured(experiment: Path, metric: str) -> list[tuple[float, float, Path]]:
    """(timestamp, value, checkpoint folder) of each report of `metric` measured at its own epoch
    with a checkpoint, in time order (vaetune carries a metric between evaluations: eval/epoch
    says where it was measured)."""
    out = []
    for path in experiment.glob("*/result.json"):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line cut short by a stopped trial
                r = json.loads(line)
                value, checkpoint = r.get(metric), r.get("checkpoint_dir_name")
                fresh = r.get("eval/epoch", r["epoch"]) == r["epoch"]
                if fresh and checkpoint and value is not None and math.isfinite(value):
                    out.append((float(r["timestamp"]), float(value), path.parent / checkpoint))
    return sorted(out)


def incumbents(experiment: Path, metric: str, mode: str, t0: float, budget: float) -> list[tuple[float, Path]]:
    """(seconds since t0, checkpoint) each time the best value so far changes, up to t0 + budget."""
    sign = 1 if mode == "min" else -1
    out, best = [], math.inf
    for ts, value, checkpoint in measured(experiment, metric):
        if ts - t0 > budget:
            break
        if sign * value < best:
            best = sign * value
            out.append((max(0.0, ts - t0), checkpoint))
    return out


@dataclass(frozen=True)
class Decoder:
    """What the evaluator needs of a model: decode(z) -> images in [0, 1], the latent size, and the
    latent mixture its user is handed to sample from (None: N(0, I) is all it has)."""

    decode: Callable
    latent_dim: int
    mixture: object = None  # a vaetune.models.LatentMixture


def vaetune_decoder(checkpoint: Path) -> Decoder:
    """The decoder of a vaetune checkpoint, with the mixture fitted to its weights if it holds one."""
    from vaetune.checkpoint import load_model, load_prior

    model, _, state = load_model(checkpoint)
    return Decoder(lambda z: model.decode(z, None), model.latent_dim, load_prior(state, checkpoint, model.latent_dim))


class Evaluator:
    """Sample FID of N codes (one seeded generator: z ~ N(0, I), or drawn from the model's fitted
    mixture) decoded by a model and quantised to uint8, as saving PNGs would, against the features
    of held-out images; vaetune's FID Inception on the CPU, vaetune's Frechet distance."""

    def __init__(self, n: int):
        from vaetune.metrics import FeatureExtractor

        self.n = n
        self.extractor = FeatureExtractor("cpu")

    def features(self, images):
        """Features of the reference images (uint8 (N, C, H, W))."""
        return self.extractor.images(images)

    def codes(self, d: Decoder, handed: bool):
        """The N codes: from the mixture `d` is handed out with when `handed` and it has one, else N(0, I)."""
        import torch

        generator = torch.Generator().manual_seed(EVAL_SEED)
        if handed and d.mixture is not None:
            return d.mixture.sample(self.n, generator)
        return torch.randn(self.n, d.latent_dim, generator=generator)

    def __call__(self, d: Decoder, reference, *, handed: bool = False) -> float:
        import torch

        from vaetune.metrics import fid_from_features

        with torch.inference_mode():
            images = (d.decode(part).clamp(0, 1).mul(255).round().to(torch.uint8)
                      for part in self.codes(d, handed).split(self.extractor.batch_size))
            return fid_from_features(self.extractor.stream(images), reference)

    def curve(self, found: list[tuple[float, Path]], load: Callable, reference, *,
              handed: bool = False) -> list[tuple[float, float]]:
        """(seconds, FID) of each incumbent whose checkpoint is still there; `load` gives its Decoder."""
        return [(t, self(load(checkpoint), reference, handed=handed)) for t, checkpoint in found if checkpoint.is_dir()]
