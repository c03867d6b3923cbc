"""Benchmark of vaetune's FID path: throughput against a bare Inception forward and the CPU's roofline, cache reuse.

    python benchmarks/bench_fid.py [--device auto] [--n N] [--batch-size B] [--csv out.csv] [--sqrtm]
                                   [--roofline-reps R]

1. Throughput, side by side in one run on the same images: the whole FID path (uint8 sprites
   (N, 3, 32, 32) on the host -> device copy, float, channels, bilinear resize to 299,
   normalisation, Inception) against a bare forward of the same network on tensors already
   resized, normalised and on the device. Best of --repeats runs each; goal: ratio >= 0.9.
2. Reference statistics once per dataset: two evaluate_generative calls of one untrained VAE on
   the built-in sprites with an empty cache; images through Inception and seconds of each (the
   second must do no Inception forward on the real images).
3. With --sqrtm: pytorch-fid's sqrtm Frechet distance against the sample-space one on the same
   features (the reason trials use the latter for N <= 2048).
4. The CPU roofline (CPU only; --roofline-reps 0 skips it): the best sustained fp32 rate of a
   large oneDNN convolution (and, for scale, a 4096^2 matrix product) on 1 and 2 threads,
   divided by the FID Inception's FLOPs an image (torch's flop counter at 299x299) -> images/s
   at the roofline. Against it, the FID path as `FeatureExtractor.images` runs it (uint8 32-px
   sprites, resize included) in four variants, each in a fresh process as a trial is, the
   variants and thread counts interleaved in rotating order, each process measuring the
   convolution right before its path (one ratio per process): `today` (pytorch-fid's network,
   channels_last, batch 50), `folded` (BatchNorm folded, batch 50), `staged` (folded, CPU stage
   micro-batches, batch 32) and `shipped` (`get_inception`: staged, freed memory retained).

Prints a table and writes the rows to --csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vaetune.machine import resolve_device
from vaetune.metrics import FeatureExtractor, evaluate_generative, get_inception
from vaetune.metrics._features import batches, to_float_rgb
from vaetune.metrics._stats import frechet_distance, frechet_distance_lowrank, statistics

log = logging.getLogger("bench_fid")

VARIANTS = ("today", "folded", "staged", "shipped")
ROOFLINE_CONV = (8, 256, 256, 56, 3)  # batch, in, out channels, side, kernel: 29.6 GFLOP, large and dense
MATMUL_SIDE = 4096


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
    from vaetune.models import ModelConfig, TrainConfig, build_model
    from vaetune.spec import DataConfig

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


def conv_gflops(repeats: int = 5, clock=time.perf_counter) -> float:
    """Best fp32 GFLOP/s of one large channels_last oneDNN convolution (3x3, padding 1) on this process's threads."""
    b, cin, cout, side, k = ROOFLINE_CONV
    x = torch.randn(b, cin, side, side).contiguous(memory_format=torch.channels_last)
    w = torch.randn(cout, cin, k, k).contiguous(memory_format=torch.channels_last)
    flops = 2 * b * cout * cin * k * k * side * side
    with torch.inference_mode():
        F.conv2d(x, w, padding=k // 2)
        best = min(_timed(lambda: F.conv2d(x, w, padding=k // 2), clock) for _ in range(repeats))
    return flops / best / 1e9


def matmul_gflops(repeats: int = 2) -> float:
    a, b = torch.randn(MATMUL_SIDE, MATMUL_SIDE), torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    a @ b
    return 2 * MATMUL_SIDE**3 / min(_timed(lambda: a @ b) for _ in range(repeats)) / 1e9


def _timed(fn, clock=time.perf_counter) -> float:
    t = clock()
    fn()
    return clock() - t


def inception_gflop() -> float:
    """FLOPs of one 299x299 image through the FID Inception, by torch's flop counter (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    from vaetune.metrics._inception import build_inception, load_fid_state_dict

    net = build_inception(load_fid_state_dict()[0])
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(torch.rand(1, 3, 299, 299))
    return counter.get_total_flops() / 1e9


def _extractor(variant: str) -> FeatureExtractor:
    """The FID path of one variant; only `shipped` goes through get_inception (and retains freed memory)."""
    from vaetune.metrics._inception import (
        CPU_STAGE_BATCHES,
        FIDInceptionRunner,
        build_inception,
        load_fid_state_dict,
    )

    if variant == "shipped":
        return FeatureExtractor("cpu")
    plain = build_inception(load_fid_state_dict()[0])
    if variant == "today":
        return FeatureExtractor("cpu", batch_size=50, network=plain)
    if variant == "folded":
        return FeatureExtractor("cpu", batch_size=50, network=FIDInceptionRunner(plain))
    if variant == "staged":
        return FeatureExtractor("cpu", batch_size=32, network=FIDInceptionRunner(plain, CPU_STAGE_BATCHES))
    raise ValueError(f"unknown variant {variant!r}; accepted: {', '.join(VARIANTS)}")


def roofline_worker(variant: str, threads: int, n: int) -> dict:
    """One process's figures: the convolution's GFLOP/s, then the variant's FID path images/s (wall and CPU)."""
    torch.set_num_threads(threads)
    ex = _extractor(variant)
    images = _sprites(n, 32)
    ex.images(images[: ex.batch_size])  # warm-up: oneDNN primitives, allocator
    gflops, gflops_cpu = conv_gflops(), conv_gflops(clock=time.process_time)
    t, cpu = time.perf_counter(), time.process_time()
    ex.images(images)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"variant": variant, "threads": threads, "conv_gflops": gflops, "images_s": n / wall,
            "conv_gflops_cpu": gflops_cpu, "images_cpu_s": n / cpu, "load": os.getloadavg()[0]}


def _spawn_worker(variant: str, threads: int, n: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, "--worker", variant, "--threads", str(threads), "--n", str(n)],
                         capture_output=True, text=True, timeout=900, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"roofline worker {variant}/{threads} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def roofline(n: int, reps: int, variants: tuple[str, ...] = VARIANTS, threads: tuple[int, ...] = (1, 2)) -> list[dict]:
    """Rows of section 4 (run.py's layout): the roofline, each variant's fraction of it, what each step gained."""
    from _common import ratio_row

    gflop = inception_gflop()
    mm = {t: _with_threads(t, matmul_gflops) for t in threads}
    cells = [(v, t) for t in threads for v in variants]
    got: dict[tuple[str, int], list[dict]] = {c: [] for c in cells}
    for r in range(reps):  # rotating order: every variant meets the same phases of the machine's load
        for c in cells[r % len(cells):] + cells[: r % len(cells)]:
            got[c].append(_spawn_worker(*c, n))
    load = max(w["load"] for ws in got.values() for w in ws)
    note = f"{n} sprites 32px, fresh process each; load average up to {load:.1f} on {os.cpu_count()} CPUs"
    rows = []
    for t in threads:
        conv = [w["conv_gflops"] for v in variants for w in got[(v, t)]]
        rows.append(ratio_row("fid", f"GFLOP/s, oneDNN conv / {MATMUL_SIDE}^2 matmul, {t} thread(s)", "conv",
                              conv, "matmul", [mm[t]] * len(conv), unit="GFLOP/s", note=f"conv {ROOFLINE_CONV}"))
        rows.append(ratio_row("fid", f"roofline images/s = conv GFLOP/s / Inception GFLOP, {t} thread(s)",
                              "conv GFLOP/s", conv, "GFLOP an image", [gflop] * len(conv), unit="",
                              note="torch.utils.flop_counter at 299x299"))
        for v in variants:
            ws = got[(v, t)]
            rows.append(ratio_row("fid", f"FID path images/s / roofline, {v}, {t} thread(s)", v,
                                  [w["images_s"] for w in ws], "roofline",
                                  [w["conv_gflops"] / gflop for w in ws], unit="images/s",
                                  goal=">= 0.6" if v == "shipped" else "", note=note))
        for a, b in zip(variants[1:], variants[:-1], strict=True):
            rows.append(ratio_row("fid", f"FID path images/s, {a} / {b}, {t} thread(s)", a,
                                  [w["images_s"] for w in got[(a, t)]], b, [w["images_s"] for w in got[(b, t)]],
                                  unit="images/s", note=note + "; per-repetition ratio"))
        if len(variants) > 2 and "today" in variants and "shipped" in variants:
            rows.append(ratio_row("fid", f"FID path images/s, shipped / today, {t} thread(s)", "shipped",
                                  [w["images_s"] for w in got[("shipped", t)]], "today",
                                  [w["images_s"] for w in got[("today", t)]], unit="images/s", goal="> 1", note=note))
    if 1 in threads:  # one thread: CPU time gives the same figures, less exposed to other processes
        conv = [w["conv_gflops_cpu"] for v in variants for w in got[(v, 1)]]
        rows.append(ratio_row("fid", "roofline images/s of CPU time, 1 thread", "conv GFLOP/s", conv,
                              "GFLOP an image", [gflop] * len(conv), note="conv timed by process CPU time"))
        for v in variants:
            ws = got[(v, 1)]
            rows.append(ratio_row("fid", f"FID path images/s / roofline, CPU time, {v}, 1 thread", v,
                                  [w["images_cpu_s"] for w in ws], "roofline",
                                  [w["conv_gflops_cpu"] / gflop for w in ws], unit="images/s",
                                  goal=">= 0.6" if v == "shipped" else "", note=note))
        for a, b in zip(variants[1:], variants[:-1], strict=True):
            rows.append(ratio_row("fid", f"FID path images/s of CPU time, {a} / {b}, 1 thread", a,
                                  [w["images_cpu_s"] for w in got[(a, 1)]], b,
                                  [w["images_cpu_s"] for w in got[(b, 1)]], unit="images/s", note=note))
    return rows


def _with_threads(threads: int, fn):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--n", type=int, default=100, help="images per set (real and generated)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 200 on CUDA, 32 on CPU")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--sqrtm", action="store_true", help="also time pytorch-fid's sqrtm (about 15-45 s on 2 CPU cores)")
    p.add_argument("--csv", default="bench_fid.csv")
    p.add_argument("--roofline-reps", type=int, default=3, help="repetitions of the roofline section; 0 skips it")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)  # one roofline process
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.worker:
        print(json.dumps(roofline_worker(args.worker, args.threads, args.n)))
        return
    device = torch.device(resolve_device(args.device, what="--device"))
    rows = throughput(device, args.n, args.batch_size, args.repeats, args.image_size)
    cache_rows, metrics = reference_cache(device, args.n, args.batch_size, args.image_size)
    rows += cache_rows
    if args.sqrtm:
        rows += sqrtm_vs_lowrank(device, args.n, args.image_size)
    if device.type == "cpu" and args.roofline_reps > 0:
        for r in roofline(max(args.n, 64), args.roofline_reps):
            rows.append({"section": "roofline", "metric": r["figure"], "value": r["ratio"], "unit": ""})
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
