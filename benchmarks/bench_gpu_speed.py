"""Training images/s of one trial on a GPU: fp32 against bf16 autocast, channels_last, torch.compile.

    python benchmarks/bench_gpu_speed.py --device cuda [--reps N] [--steps S]
    python benchmarks/bench_gpu_speed.py --device cpu --smoke      # proves the code runs

The trial of ygo/apples-sized searches: the conv VAE (width 32, latent 128) at 64 px, batch 128,
the training step of vaetune.train (uint8 images on the device, indexed per batch, float /255,
the elbo objective of vaetune.models with BCE, AdamW). Each repetition times S steps of every variant in a
rotating order, synchronising the device only around the timed window. Ratio = images/s of the
variant / images/s of fp32 in the same repetition.

On CUDA it also counts host synchronisations per training step of `vaetune.train.train`
(torch.cuda.set_sync_debug_mode("warn") over one epoch): the loop should sync only every 50 steps
(the finiteness check) and once per epoch, so the ratio syncs / steps must stay well below 1.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleave, ratio_row  # noqa: E402

SECTION = "gpu"
VARIANTS = ("fp32", "bf16", "channels_last", "compile", "bf16+channels_last+compile")


def sizes(mode: str, device: str) -> dict:
    if device == "cuda":
        return {"image_size": 64, "batch": 128, "steps": 50, "reps": 5, "variants": VARIANTS}
    return {  # CPU: proves the code runs; the numbers say nothing about a GPU
        "smoke": {"image_size": 16, "batch": 16, "steps": 3, "reps": 2, "variants": VARIANTS[:3]},
        "quick": {"image_size": 32, "batch": 32, "steps": 5, "reps": 2, "variants": VARIANTS},
        "full": {"image_size": 32, "batch": 64, "steps": 10, "reps": 3, "variants": VARIANTS},
    }[mode]


class _Variant:
    """One way of running the training step, with its own model and optimizer."""

    def __init__(self, name: str, images, batch: int, device: str):
        import torch

        from vaetune.models import TrainConfig, build_model, config_for

        torch.manual_seed(0)
        self.name, self.images, self.batch, self.device = name, images, batch, device
        self.tc = TrainConfig(recon_loss="bce", batch_size=batch)
        self.bf16 = "bf16" in name
        self.channels_last = "channels_last" in name
        model = build_model(config_for("conv", width=32, latent_dim=128), tuple(images.shape[1:])).to(device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        self.model = torch.compile(model) if "compile" in name else model
        self.gen = torch.Generator(device=device).manual_seed(0)

    def step(self) -> None:
        import torch

        from vaetune.models import elbo

        idx = torch.randint(0, len(self.images), (self.batch,), device=self.device, generator=self.gen)
        x = self.images[idx].float().div_(255)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=self.device, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(x)
        loss = elbo(out, x, self.tc, 0.0).loss  # beta 1 (the config's, constant)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def images_per_s(self, steps: int) -> float:
        _sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            self.step()
        _sync(self.device)
        return steps * self.batch / (time.perf_counter() - t)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def syncs_per_step(device: str) -> dict | None:
    """Host synchronisations per step of one epoch of vaetune.train.train (CUDA only)."""
    import tempfile

    import torch

    from vaetune.data import load_data
    from vaetune.spec import Config
    from vaetune.train import standard_callbacks, train

    if device != "cuda":
        return None
    with tempfile.TemporaryDirectory() as tmp:
        config = Config.model_validate({
            "data": {"source": "builtin:sprites", "count": 12_800, "image_size": 64, "cache_dir": tmp},
            "model": {"arch": "conv", "width": 32, "latent_dim": 128},
            "train": {"epochs": 1, "batch_size": 128, "device": "cuda", "recon_loss": "bce"},
        })
        data = load_data(config.data)
        steps = -(-len(data.splits["train"]) // 128)
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                train(config, standard_callbacks(config, Path(tmp) / "run"), data=data)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return {"section": SECTION, "figure": "host syncs per step, vaetune.train.train (1 epoch)", "a": "syncs",
            "b": "steps", "a_value": syncs, "b_value": steps, "unit": "", "ratio": syncs / steps,
            "ratio_min": syncs / steps, "ratio_max": syncs / steps, "reps": 1, "goal": "<< 1",
            "note": "includes validation, grids and the checkpoint of the epoch"}


def run(mode: str = "quick", device: str = "auto", reps: int | None = None, steps: int | None = None) -> list[dict]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    s = sizes(mode, device)
    reps, steps = reps or s["reps"], steps or s["steps"]
    if device == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    n = s["batch"] * 16
    images = torch.randint(0, 256, (n, 3, s["image_size"], s["image_size"]), dtype=torch.uint8, device=device)
    variants = {name: _Variant(name, images, s["batch"], device) for name in s["variants"]}
    for v in variants.values():  # warm-up: compilation, autotuning, allocator
        for _ in range(3):
            v.step()
    ips = interleave({name: (lambda v=v: v.images_per_s(steps)) for name, v in variants.items()}, reps)
    where = "GPU" if device == "cuda" else "CPU (code check only: not a GPU figure)"
    note = f"{device}: conv VAE width 32 latent 128, {s['image_size']}px, batch {s['batch']}, {steps} steps per window; {where}"
    rows = [ratio_row(SECTION, f"images/s, {name} / fp32", name, ips[name], "fp32", ips["fp32"],
                      unit="images/s", note=note) for name in s["variants"][1:]]
    sync = syncs_per_step(device)
    return rows + ([sync] if sync else [])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    args = p.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    for row in run(mode, args.device, args.reps, args.steps):
        print(f"{row['figure']:<50} {row['ratio']:.3f} ({row['ratio_min']:.3f}..{row['ratio_max']:.3f})  {row['note']}")


if __name__ == "__main__":
    main()
