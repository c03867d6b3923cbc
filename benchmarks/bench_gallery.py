"""How long each interaction of `vaetune gallery` takes on this machine, at 32 and 64 px.

For each size a small real search is run once (`vaetune search`: the sprites, the quick-start's
conv VAE of width 32 and 16 latent dimensions, two trials of 2 epochs, a checkpoint each epoch;
kept under --cache and reused). Streamlit's AppTest then drives the page as a user does, and an
interaction's time is the wall time of the page's rerun that it causes: what the server computes
before the browser can draw (the browser's own drawing, a few milliseconds of PNGs, is not in it).
Each interaction is repeated (alternating between two values, so every rerun recomputes); a row is
the median and the slowest of its repetitions. Opening the page (reading the results, loading the
models and the data's images, once per server; at the first size also the page's Python imports)
is reported apart: it happens once, not per interaction.

    .venv/bin/python benchmarks/bench_gallery.py               # 32 and 64 px, 5 repetitions
    .venv/bin/python benchmarks/bench_gallery.py --sizes 32 --reps 3

Writes benchmarks/results_gallery.csv (size, interaction, median_s, max_s, reps, machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine  # noqa: E402

OUT = Path(__file__).resolve().parent / "results_gallery.csv"
BUDGET_S = 1.0  # the bound on one interaction


def space(size: int, cache: Path) -> dict:
    return {
        "name": f"gallery{size}",
        "data": {"source": "builtin:sprites", "image_size": size, "count": 2000, "cache_dir": str(cache / "data")},
        "model": {"arch": "conv", "width": 32, "latent_dim": 16},
        "train": {"epochs": 2, "batch_size": 64, "lr": 0.002, "beta": {"grid": [0.1, 1.0]}, "num_threads": 1,
                  "checkpoint_every": 1, "fid_every": 0},
        "search": {"sampler": "grid", "num_samples": 2, "max_concurrent": 2, "scheduler": "fifo",
                   "metric": "val/elbo", "keep_checkpoints": 2},
    }


def search(size: int, cache: Path) -> Path:
    """The results folder of the size's search, run once."""
    import yaml

    work = cache / f"{size}px"
    results = work / "results" / f"gallery{size}"
    if (results / "summary.csv").exists():
        return results
    work.mkdir(parents=True, exist_ok=True)
    (work / "space.yaml").write_text(yaml.safe_dump(space(size, cache), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(RAY_TMPDIR=tempfile.mkdtemp(prefix="vt", dir="/tmp"))
    print(f"{size} px: running a 2-trial search once (a few minutes) ...", flush=True)
    subprocess.run([sys.executable, "-m", "vaetune.cli", "search", "space.yaml"], cwd=work, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return results


def upload_png(results: Path) -> bytes:
    """A validation image of the search's data as PNG bytes (what a user would upload)."""
    import io

    from torchvision.utils import save_image

    from vaetune.gallery import data_images, load, open_gallery

    loaded = load(open_gallery(results).entries[0].checkpoint)
    buf = io.BytesIO()
    save_image(data_images(loaded.config).val[:1].float() / 255, buf, format="png")
    return buf.getvalue()


def measure(results: Path, reps: int) -> list[tuple[str, list[float]]]:
    """(interaction, seconds of each repetition) on the gallery of `results`."""
    from streamlit.testing.v1 import AppTest

    from vaetune.gallery import APP, TARGET_ENV, export_bytes, open_gallery

    os.environ[TARGET_ENV] = str(results)
    at = AppTest.from_file(str(APP), default_timeout=600)
    rows = []

    def timed(name: str, change, values=(None,)) -> None:
        seconds = []
        for r in range(reps):
            change(values[r % len(values)])
            t0 = time.perf_counter()
            at.run()
            seconds.append(time.perf_counter() - t0)
            assert not at.exception, [e.value for e in at.exception]
            assert not at.error, [e.value for e in at.error]
        rows.append((name, seconds))

    t0 = time.perf_counter()
    at.run()
    rows.append(("opening the page (results, models and images read once per server)", [time.perf_counter() - t0]))
    section = lambda name: at.radio(key="section").set_value(name)  # noqa: E731
    timed("samples: new samples (next seed)", lambda _: at.button(key="new_samples").click())
    timed("samples: temperature", lambda v: at.slider(key="temperature").set_value(v), (0.7, 1.3))
    timed("samples: sampler", lambda v: at.radio(key="sampler").set_value(v), ("prior", "gmm"))
    timed("samples: 64 images", lambda v: at.slider(key="n").set_value(v), (64, 63))
    at.slider(key="n").set_value(16)
    timed("trials: compare the best two", lambda v: at.multiselect(key="trials").set_value(v),
          ([e.key for e in open_gallery(results).entries[:2]], [open_gallery(results).entries[0].key]))
    at.button(key="best_two").click()
    timed("reconstructions: open the section", lambda v: section(v), ("Reconstructions", "Samples"))
    section("Reconstructions")
    at.run()
    timed("reconstructions: 32 validation images", lambda v: at.slider(key="recon_n").set_value(v), (32, 31))
    png = upload_png(results)
    timed("reconstructions: upload an image", lambda v: at.file_uploader(key="uploads").set_value(
        ("mine.png", png, "image/png") if v else None), (True, False))
    timed("latent explorer: open the section", lambda v: section(v), ("Latent explorer", "Samples"))
    section("Latent explorer")
    at.run()
    key = next(s.key for s in at.slider if str(s.key).startswith("z_"))
    timed("latent explorer: move a slider", lambda v: at.slider(key=key).set_value(v), (2.0, -2.0))
    timed("latent explorer: traverse another dimension", lambda v: at.selectbox(key="strip_dim").select_index(v),
          (1, 0))
    timed("latent explorer: another image", lambda v: at.number_input(key="explore_image").set_value(v), (5, 6))
    timed("interpolation: open the section", lambda v: section(v), ("Interpolation", "Samples"))
    section("Interpolation")
    at.run()
    timed("interpolation: steps (strip and GIF)", lambda v: at.slider(key="interp_steps").set_value(v), (12, 8))
    timed("interpolation: upload image A", lambda v: at.file_uploader(key="interp_up_A").set_value(
        ("a.png", png, "image/png") if v else None), (True, False))
    timed("epochs and memory: open the section", lambda v: section(v), ("Epochs and memory", "Samples"))
    section("Epochs and memory")
    at.run()
    epoch_key = next(s.key for s in at.select_slider)
    timed("epochs and memory: another epoch", lambda v: at.select_slider(key=epoch_key).set_value(v), (0, 1))
    timed("epochs and memory: another sample's neighbours", lambda v: at.number_input(key="memory").set_value(v),
          (3, 4))
    timed("export: open the section", lambda v: section(v), ("Export", "Samples"))
    gallery = open_gallery(results)
    seconds = []
    for _ in range(reps):
        t0 = time.perf_counter()
        export_bytes(gallery, gallery.entries[0].key)
        seconds.append(time.perf_counter() - t0)
    rows.append(("export: the checkpoint's download", seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="32,64")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "vaetune-bench-gallery"))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    import pandas as pd
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    where = machine()
    print(where)
    table = []
    for size in (int(s) for s in args.sizes.split(",")):
        results = search(size, Path(args.cache))
        for name, seconds in measure(results, args.reps):
            table.append({"size": size, "interaction": name, "median_s": round(statistics.median(seconds), 3),
                          "max_s": round(max(seconds), 3), "reps": len(seconds), "machine": where})
    width = max(len(r["interaction"]) for r in table)
    print(f"\n{'px':>3}  {'interaction':<{width}}  median s  max s")
    for r in table:
        over = "  over 1 s" if r["max_s"] > BUDGET_S and not r["interaction"].startswith("opening") else ""
        print(f"{r['size']:>3}  {r['interaction']:<{width}}  {r['median_s']:8.3f}  {r['max_s']:5.3f}{over}")
    pd.DataFrame(table).to_csv(args.out, index=False)
    print(f"\n-> {args.out}")


if __name__ == "__main__":
    main()
