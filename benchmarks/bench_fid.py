"""Benchmark of vaetune's FID path: throughput against a bare Inception forward, and cache reuse.

    python benchmarks/bench_fid.py [--device auto] [--n N] [--batch-size B] [--csv out.csv] [--sqrtm]

1. Throughput, side by side in one run on the same images: the whole FID path (uint8 sprites
   (N, 3, 32, 32) on the host -> device copy, float, channels, bilinear resize to 299,
   normalisation, Inception) against a bare forward of the same network on tensors already
   resized, normalised and on the device. Best of --repeats runs each; goal: ratio >= 0.9.
2. Reference statistics once per dataset: two evaluate_generative calls of one untrained VAE on
   the built-in sprites with an empty cache; images through Inception and seconds of each (the
   second must do no Inception forward on the real images).
3. With --sqrtm: pytorch-fid's sqrtm Frechet distance against the sample-space one on the same
   features (the reason trials use the latter for N <= 2048).

Prints a table and writes the rows to --csv.
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vaetune.devices import resolve_device
from vaetune.metrics import FeatureExtractor, evaluate_generative, get_inception
from vaetune.metrics._features import batches, to_float_rgb
from vaetune.metrics._stats import frechet_distance, frechet_distance_lowrank, statistics

log = logging.getLogger("bench_fid")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sprites(n: int, size: int, seed: int = 0) -> torch.Tensor:
    from vaetune.data import generate_sprites

    return generate_sprites(n, size, seed=seed).images  # uint8 (n, 3, size, size)


def _prepared(ex: FeatureExtractor, images: torch.Tensor) -> list[torch.Tensor]:
    """The bare forward's input: resized to 299, in [-1, 1], on the device, channels_last."""
    out = []
    with torch.inference_mode():
        for b in batches(images, ex.batch_size):
            x = to_float_rgb(b.to(ex.device))
            x = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
            out.append(x.contiguous(memory_format=ex.memory_format))
    _sync(ex.device)
    return out


def _time_full(ex: FeatureExtractor, images: torch.Tensor) -> float:
    _sync(ex.device)
    t = time.perf_counter()
    ex.images(images)  # ends with a copy to the host, which synchronises
    return time.perf_counter() - t


@torch.inference_mode()
def _time_bare(net: torch.nn.Module, prepared: list[torch.Tensor], device: torch.device) -> float:
    net.resize_input, net.normalize_input = False, False
    try:
        _sync(device)
        t = time.perf_counter()
        for x in prepared:
            net(x)
        _sync(device)
        return time.perf_counter() - t
    finally:
        net.resize_input, net.normalize_input = True, True


def throughput(device: torch.device, n: int, batch_size: int | None, repeats: int, size: int) -> list[dict]:
    images = _sprites(n, size)
    ex = FeatureExtractor(device, batch_size=batch_size)
    prepared = _prepared(ex, images)
    ex.images(images[: ex.batch_size])  # warm-up: kernels, allocator, oneDNN primitives
    _time_bare(ex.net, prepared[:1], ex.device)
    full, bare = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        full.append(_time_full(ex, images))
        bare.append(_time_bare(ex.net, prepared, ex.device))
    full_ips, bare_ips = n / min(full), n / min(bare)
    return [
        {"section": "throughput", "metric": "full_fid_path", "value": full_ips, "unit": "images/s"},
        {"section": "throughput", "metric": "bare_inception_forward", "value": bare_ips, "unit": "images/s"},
        {"section": "throughput", "metric": "ratio_full_over_bare", "value": full_ips / bare_ips, "unit": ""},
        {"section": "throughput", "metric": "batch_size", "value": ex.batch_size, "unit": "images"},
    ]


def reference_cache(device: torch.device, n: int, batch_size: int | None, size: int) -> tuple[list[dict], dict]:
    from vaetune.data import load_data
    from vaetune.models import build_model
    from vaetune.spec import DataConfig, ModelConfig, TrainConfig

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = load_data(DataConfig(source="builtin:sprites", count=max(200, 12 * n), image_size=size, cache_dir=tmp))
        model = build_model(ModelConfig(), tuple(data.images.shape[1:]), data.num_classes).to(device)
        cfg = TrainConfig(fid_every=1, fid_samples=n)
        seen: list[int] = []
        hook = get_inception(device).register_forward_pre_hook(lambda m, args: seen.append(len(args[0])))
        try:
            for call in ("1st (cache miss)", "2nd (cache hit)"):
                seen.clear()
                t = time.perf_counter()
                out = evaluate_generative(model, data, cfg, device, cache_dir=tmp, batch_size=batch_size)
                _sync(device)
                rows.append({"section": "evaluate_generative", "metric": f"{call} seconds",
                             "value": time.perf_counter() - t, "unit": "s"})
                rows.append({"section": "evaluate_generative", "metric": f"{call} inception images",
                             "value": sum(seen), "unit": "images"})
        finally:
            hook.remove()
    return rows, out


def sqrtm_vs_lowrank(device: torch.device, n: int, size: int) -> list[dict]:
    ex = FeatureExtractor(device)
    fa, fb = ex.images(_sprites(n, size, seed=1)), ex.images(_sprites(n, size, seed=2))
    t = time.perf_counter()
    exact = frechet_distance(*statistics(fa), *statistics(fb))
    t_sqrtm = time.perf_counter() - t
    t = time.perf_counter()
    fast = frechet_distance_lowrank(fa, fb)
    t_low = time.perf_counter() - t
    return [
        {"section": "frechet", "metric": "pytorch-fid sqrtm seconds", "value": t_sqrtm, "unit": "s"},
        {"section": "frechet", "metric": "sample-space seconds", "value": t_low, "unit": "s"},
        {"section": "frechet", "metric": "relative difference", "value": abs(fast - exact) / abs(exact), "unit": ""},
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--n", type=int, default=100, help="images per set (real and generated)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 200 on CUDA, 50 on CPU")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--sqrtm", action="store_true", help="also time pytorch-fid's sqrtm (about 15-45 s on 2 CPU cores)")
    p.add_argument("--csv", default="bench_fid.csv")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(resolve_device(args.device, what="--device"))
    rows = throughput(device, args.n, args.batch_size, args.repeats, args.image_size)
    cache_rows, metrics = reference_cache(device, args.n, args.batch_size, args.image_size)
    rows += cache_rows
    if args.sqrtm:
        rows += sqrtm_vs_lowrank(device, args.n, args.image_size)
    common = {"device": str(device), "n": args.n, "threads": torch.get_num_threads()}
    rows = [{**common, **r} for r in rows]
    print(f"device {device}, N={args.n}, {args.image_size}px sprites, torch threads {torch.get_num_threads()}")
    for r in rows:
        print(f"  {r['section']:<20} {r['metric']:<34} {r['value']:>12.4g} {r['unit']}")
    print("  last metrics:", {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
