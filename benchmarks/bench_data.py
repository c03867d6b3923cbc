"""Data path: vaetune's decoded uint8 cache against decoding PNGs with PIL in a DataLoader.

    python benchmarks/bench_data.py [--quick|--smoke] [--reps N]

Images: built-in sprites rendered at 64 px and written as PNG files to a temporary folder, then
read at 32 px, as a user's folder of images would be. Model and trial settings: the sprites
quick-start's as shipped (search_spaces/sprites.yaml: conv, its width and batch size), one
torch thread.

1. Start-up, trial start to first batch:
   - vaetune, cache hit: `load_data` (finds the cache file) -> train split -> first batch;
   - vaetune, cache miss: the same with an empty cache folder (decodes every PNG once);
   - baseline: an ImageFolder-like Dataset over the files (PIL open, RGB, Resize, ToTensor) in a
     DataLoader with num_workers 0, first batch.
   Independence of decode cost: N images written as 64 px PNGs against the same N images as
   512 px PNGs (decoding one costs several times more); the cache hit should not notice (goal
   ~1), the cache miss shows what decoding costs. Scaling: N against 4N images (e.g. 2k and 8k)
   at 64 px; a cache hit still lists and stats every file (the fingerprint) and reads N images
   from the cache file, so it grows with N, far below decoding.
2. Share of step time spent waiting for data, one epoch of real training steps per variant and
   repetition: vaetune batches (uint8 tensor indexing + float) against the DataLoader baseline
   with num_workers 0 and 2. Ratio = data seconds / step seconds; goal <= 0.05 for vaetune.
   And epoch time, vaetune / DataLoader.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleave, ratio_row  # noqa: E402

SECTION = "data"
IMAGE_SIZE, FILE_SIZE = 32, 64


def sizes(mode: str) -> dict:
    return {
        "smoke": {"n": 200, "epoch_images": 200, "reps": 2},
        "quick": {"n": 1000, "epoch_images": 1000, "reps": 3},
        "full": {"n": 2000, "epoch_images": 2000, "reps": 5},
    }[mode]


BIG_FILE_SIZE = 512


def write_pngs(folder: Path, n: int, size: int = FILE_SIZE) -> Path:
    """n sprite PNGs of `size` px in folder (flat, no labels); the same n sprites at any size."""
    from PIL import Image

    from vaetune.data import generate_sprites

    folder.mkdir(parents=True, exist_ok=True)
    images = generate_sprites(n, FILE_SIZE, seed=1).images.permute(0, 2, 3, 1).numpy()  # (n, H, W, C)
    for i, img in enumerate(images):
        img = Image.fromarray(img)
        if size != FILE_SIZE:
            img = img.resize((size, size), Image.Resampling.BICUBIC)
        img.save(folder / f"{i:05d}.png")
    return folder


class PngFolder:
    """The original projects' data path: one PIL decode + transforms per image per epoch."""

    def __init__(self, root: Path, size: int):
        from torchvision import transforms

        self.files = sorted(p for p in root.iterdir() if p.suffix == ".png")
        self.transform = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.files[i]) as img:
            return self.transform(img.convert("RGB"))


def _data_config(folder: Path, cache: Path):
    from vaetune.spec import DataConfig

    return DataConfig(source=str(folder), image_size=IMAGE_SIZE, labels="none", cache_dir=str(cache), min_images=16)


def _model_and_opt():
    """The sprites space's model (as shipped), AdamW, its batch size and a description."""
    import torch

    from vaetune.models import build_model
    from vaetune.spec import load_space

    space = load_space(str(Path(__file__).resolve().parent.parent / "search_spaces" / "sprites.yaml"),
                       [f"data.image_size={IMAGE_SIZE}"])
    config = space.default_config()
    model = build_model(config.model, (3, IMAGE_SIZE, IMAGE_SIZE))
    what = f"conv width {config.model.width} latent {config.model.latent_dim}, batch {config.train.batch_size}"
    return model, torch.optim.AdamW(model.parameters(), lr=config.train.lr), config.train.batch_size, what


# ---------------------------------------------------------------------------------------------
# 1. Start-up


def startup_vaetune(folder: Path, cache: Path, batch_size: int) -> float:
    import torch

    from vaetune.data import load_data
    from vaetune.train import Batches

    t = time.perf_counter()
    data = load_data(_data_config(folder, cache))
    x, _ = data.subset("train")
    next(iter(Batches(x, None, batch_size).epoch(torch.Generator().manual_seed(0))))
    return time.perf_counter() - t


def startup_loader(folder: Path, batch_size: int, workers: int) -> float:
    from torch.utils.data import DataLoader

    t = time.perf_counter()
    loader = DataLoader(PngFolder(folder, IMAGE_SIZE), batch_size=batch_size, shuffle=True, num_workers=workers)
    next(iter(loader))
    return time.perf_counter() - t


def startup(tmp: Path, n: int, reps: int, batch_size: int) -> list[dict]:
    import shutil

    small, large = write_pngs(tmp / f"png{n}", n), write_pngs(tmp / f"png{4 * n}", 4 * n)
    big = write_pngs(tmp / f"png{n}-{BIG_FILE_SIZE}px", n, BIG_FILE_SIZE)
    hit_cache = tmp / "cache-hit"
    for folder in (small, large, big):
        startup_vaetune(folder, hit_cache, batch_size)  # fills the cache
    misses = iter(range(10_000))

    def miss(folder: Path) -> float:
        cache = tmp / f"cache-miss{next(misses)}"
        try:
            return startup_vaetune(folder, cache, batch_size)
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    s = interleave({
        "hit_small": lambda: startup_vaetune(small, hit_cache, batch_size),
        "hit_large": lambda: startup_vaetune(large, hit_cache, batch_size),
        "hit_big": lambda: startup_vaetune(big, hit_cache, batch_size),
        "miss_small": lambda: miss(small),
        "miss_large": lambda: miss(large),
        "miss_big": lambda: miss(big),
        "loader_small": lambda: startup_loader(small, batch_size, 0),
        "loader_large": lambda: startup_loader(large, batch_size, 0),
    }, reps)
    nl, ns = f"{4 * n} images", f"{n} images"
    pb, ps = f"{BIG_FILE_SIZE}px files", f"{FILE_SIZE}px files"
    return [
        ratio_row(SECTION, f"start-up, cache hit, {pb} / {ps}, {ns}", pb, s["hit_big"], ps, s["hit_small"],
                  unit="s", goal="~1 (independent of decode cost)",
                  note=f"load_data from the cache file -> train split -> first batch; the same {n} images as "
                       f"{BIG_FILE_SIZE}px or {FILE_SIZE}px PNGs, read at {IMAGE_SIZE}px"),
        ratio_row(SECTION, f"start-up, cache miss, {pb} / {ps}, {ns}", pb, s["miss_big"], ps, s["miss_small"],
                  unit="s", note="empty cache: what decoding costs (PIL, resized to 32 px), once per data set"),
        ratio_row(SECTION, f"start-up, cache hit, {nl} / {ns}", nl, s["hit_large"], ns, s["hit_small"], unit="s",
                  note="grows with N: the fingerprint stats every file, and N images are read from the cache"),
        ratio_row(SECTION, f"start-up, cache miss, {nl} / {ns}", nl, s["miss_large"], ns, s["miss_small"], unit="s",
                  note="empty cache: every PNG decoded (PIL, 64->32 px) once, then cached"),
        ratio_row(SECTION, f"start-up, cache hit / cache miss, {nl}", "hit", s["hit_large"], "miss",
                  s["miss_large"], unit="s", note="what the cache saves every trial after the first"),
        ratio_row(SECTION, f"start-up, DataLoader(workers=0), {nl} / {ns}", nl, s["loader_large"], ns,
                  s["loader_small"], unit="s", note="file listing + the first batch's 128 decodes"),
    ]


# ---------------------------------------------------------------------------------------------
# 2. Data share of step time


def _step(model, opt, x) -> None:
    import torch.nn.functional as F

    out = model(x)
    loss = F.binary_cross_entropy_with_logits(out.logits, x, reduction="sum") / len(x)
    loss = loss + 0.5 * (out.mu.pow(2) + out.logvar.exp() - 1 - out.logvar).sum(1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _epoch(batches, model, opt) -> tuple[float, float]:
    """(seconds waiting for batches, seconds of the whole epoch)."""
    data_s, start = 0.0, time.perf_counter()
    it = iter(batches)
    while True:
        t = time.perf_counter()
        x = next(it, None)
        data_s += time.perf_counter() - t
        if x is None:
            break
        _step(model, opt, x[0] if isinstance(x, (list, tuple)) else x)
    return data_s, time.perf_counter() - start


def data_share(tmp: Path, n_images: int, reps: int) -> list[dict]:
    import torch
    from torch.utils.data import DataLoader

    from vaetune.data import load_data
    from vaetune.train import Batches

    torch.set_num_threads(1)  # a trial's setting in the sprites space (two trials, two cores)
    folder = tmp / f"png{n_images}" if (tmp / f"png{n_images}").exists() else write_pngs(tmp / f"png{n_images}", n_images)
    data = load_data(_data_config(folder, tmp / "cache-hit"))
    x, _ = data.subset("train")
    files = PngFolder(folder, IMAGE_SIZE)
    files.files = [files.files[int(i)] for i in data.splits["train"]]  # the same training split
    model, opt, batch_size, what = _model_and_opt()
    gen = torch.Generator().manual_seed(0)
    vt = Batches(x, None, batch_size)
    loaders = {w: DataLoader(files, batch_size=batch_size, shuffle=True, num_workers=w,
                             persistent_workers=w > 0) for w in (0, 2)}
    for w in loaders:  # start the workers before timing: start-up is figure 1
        next(iter(loaders[w]))
    _epoch(((b,) for b, _ in vt.epoch(gen)), model, opt)  # warm-up
    s = interleave({
        "vaetune": lambda: _epoch(((b,) for b, _ in vt.epoch(gen)), model, opt),
        "loader0": lambda: _epoch(loaders[0], model, opt),
        "loader2": lambda: _epoch(loaders[2], model, opt),
    }, reps)
    rows, note = [], f"{len(x)} training images {IMAGE_SIZE}px (PNG {FILE_SIZE}px), {what}, 1 thread"
    names = {"vaetune": "vaetune cache", "loader0": "DataLoader(workers=0)", "loader2": "DataLoader(workers=2)"}
    for key, label in names.items():
        rows.append(ratio_row(SECTION, f"data share of step time, {label}", "data s", [d for d, _ in s[key]],
                              "epoch s", [e for _, e in s[key]], unit="s",
                              goal="<= 0.05" if key == "vaetune" else "", note=note))
    for key in ("loader0", "loader2"):
        rows.append(ratio_row(SECTION, f"epoch time, vaetune cache / {names[key]}", "vaetune",
                              [e for _, e in s["vaetune"]], key, [e for _, e in s[key]], unit="s", note=note))
    return rows


def run(mode: str = "quick", reps: int | None = None) -> list[dict]:
    s = sizes(mode)
    reps = reps or s["reps"]
    with tempfile.TemporaryDirectory(prefix="vaetune-bench-data-") as tmp_:
        tmp = Path(tmp_)
        rows = startup(tmp, s["n"], reps, 128)
        rows += data_share(tmp, s["epoch_images"], reps)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--reps", type=int, default=None)
    args = p.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    for row in run(mode, args.reps):
        print(f"{row['figure']:<55} {row['ratio']:.3f} ({row['ratio_min']:.3f}..{row['ratio_max']:.3f})")


if __name__ == "__main__":
    main()
