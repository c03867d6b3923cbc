"""Every vaetune benchmark in one command: a table on stdout and one CSV.

    python benchmarks/run.py [--quick | --smoke] [--out benchmarks/results.csv] [--only trainable,data,...]
                             [--device auto|cpu|cuda] [--seeds N] [--data DIR]

Sections (each a module here, runnable on its own):
  trainable  epochs/s of a bare PyTorch loop vs vaetune.train.train vs a 1-trial Tune search
  data       trial start-up (cache hit vs decode) and data share of step time vs a PIL DataLoader
  fid        the FID path (benchmarks/bench_fid.py, the FID engineer's): full path vs bare Inception,
             reference statistics computed once, the CPU roofline and the path's fraction of it
  search     best sample FID vs cumulative epochs: ASHA+TPE vs FIFO+random vs an exhaustive grid
  gpu        images/s of a trial: fp32 vs bf16 vs channels_last vs torch.compile (CPU: code check)
  peers      at equal wall-clock on real collections: vaetune's search as shipped vs one default model vs Ray
             Tune's defaults vs the original project's script vs an exhaustive grid

Every figure is a ratio of two variants measured side by side in one run, with the variants'
repetitions interleaved: `ratio` is the median per-repetition ratio, `ratio_min`/`ratio_max` its
spread. Full run: about 45 min on 2 CPU cores (search about 30 of it); --smoke (a code check for
the tests, numbers meaningless) under a minute, without the fid and search sections. The peers
section runs only when --only names it: about 2 h, --quick 20 min, --smoke minutes.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import FIELDS, machine  # noqa: E402

SECTIONS = ("trainable", "data", "fid", "search", "gpu", "peers")
SMOKE_SKIPS = {"fid": "Inception on a CPU is ~5 images/s", "search": "several Ray searches take minutes"}
IF_NAMED = {"peers": "45 timed runs take about 2 hours (--quick 20 min); --only peers runs them"}


def fid_rows(mode: str, device: str) -> list[dict]:
    """bench_fid.py's figures as ratio rows (its throughput figure is best-of-repeats)."""
    import bench_fid
    import torch

    dev = torch.device(bench_fid.resolve_device(device, what="--device"))
    n, repeats = (20, 2) if mode == "quick" else (50, 3)
    raw = {r["metric"]: r["value"] for r in bench_fid.throughput(dev, n, None, repeats, 32)}
    cache = {r["metric"]: r["value"] for r in bench_fid.reference_cache(dev, n, None, 32)[0]}
    note = f"{dev}, {n} sprites 32px, {torch.get_num_threads()} threads"
    return [
        {"section": "fid", "figure": "images/s, full FID path / bare Inception forward", "a": "full path",
         "b": "bare forward", "a_value": raw["full_fid_path"], "b_value": raw["bare_inception_forward"],
         "unit": "images/s", "ratio": raw["ratio_full_over_bare"], "ratio_min": math.nan, "ratio_max": math.nan,
         "reps": repeats, "goal": ">= 0.9", "note": note + "; bench_fid.py: best of interleaved repeats"},
        {"section": "fid", "figure": "evaluate_generative seconds, 2nd (cache hit) / 1st", "a": "2nd", "b": "1st",
         "a_value": cache["2nd (cache hit) seconds"], "b_value": cache["1st (cache miss) seconds"], "unit": "s",
         "ratio": cache["2nd (cache hit) seconds"] / cache["1st (cache miss) seconds"], "ratio_min": math.nan,
         "ratio_max": math.nan, "reps": 1, "goal": "< 1", "note": note + "; real statistics cached after the 1st"},
        {"section": "fid", "figure": "Inception images, 2nd evaluation / 1st", "a": "2nd", "b": "1st",
         "a_value": cache["2nd (cache hit) inception images"], "b_value": cache["1st (cache miss) inception images"],
         "unit": "images", "ratio": cache["2nd (cache hit) inception images"] / cache["1st (cache miss) inception images"],
         "ratio_min": math.nan, "ratio_max": math.nan, "reps": 1, "goal": "< 1",
         "note": "the 2nd must not run the real images through Inception"},
    ] + (bench_fid.roofline(*((32, 2, ("today", "shipped")) if mode == "quick" else (64, 3)))
         if dev.type == "cpu" else [])


def run_section(name: str, mode: str, device: str, png: Path, seeds: int | None = None,
                data: Path | None = None) -> list[dict]:
    if name == "trainable":
        import bench_trainable

        return bench_trainable.run(mode)
    if name == "data":
        import bench_data

        return bench_data.run(mode)
    if name == "fid":
        return fid_rows(mode, device)
    if name == "search":
        import bench_search

        return bench_search.run(mode, seeds=seeds, png=png)
    if name == "peers":
        import bench_peers

        rows, names = bench_peers.run(mode, seeds=seeds, data=data)
        print(bench_peers.markdown(rows, names))
        return rows
    import bench_gpu_speed

    return bench_gpu_speed.run(mode, device)


def print_table(rows: list[dict]) -> None:
    print(f"\n{'section':<10} {'figure':<62} {'ratio':>8} {'spread':>17}  {'goal':<14} a / b")
    for r in rows:
        spread = f"{r['ratio_min']:.3g}..{r['ratio_max']:.3g}" if not math.isnan(r["ratio_min"]) else ""
        print(f"{r['section']:<10} {r['figure'][:62]:<62} {r['ratio']:>8.3g} {spread:>17}  {r['goal']:<14} "
              f"{r['a_value']:.4g} / {r['b_value']:.4g} {r['unit']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    size.add_argument("--smoke", action="store_true", help="tiny code check (< 1 min), numbers meaningless")
    p.add_argument("--out", default=str(HERE / "results.csv"),
                   help="CSV of every row; rows of sections not run now are kept from the earlier file")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SECTIONS)} (default: all but peers)")
    p.add_argument("--device", default="auto", help="device of the gpu and fid sections: auto, cpu or cuda")
    p.add_argument("--png", default=str(HERE / "search_efficiency.png"), help="plot of the search section")
    p.add_argument("--seeds", type=int, default=None,
                   help="search section: seeds of asha+tpe and fifo+random (1); peers: seeds of each method (3)")
    p.add_argument("--data", default=None, help="peers section: the folder of the real collections (each fetched "
                   "there when missing; default ~/.cache/vaetune/benchmarks)")
    args = p.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    only = [s.strip() for s in (args.only or ",".join(SECTIONS)).split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        p.error(f"--only: unknown section {unknown[0]!r}; accepted: {', '.join(SECTIONS)}")
    where = machine()
    print(f"vaetune benchmarks, {mode} mode: {where}", flush=True)
    rows, failed = [], []
    for name in only:
        if mode == "smoke" and name in SMOKE_SKIPS:
            print(f"[{name}] skipped in --smoke: {SMOKE_SKIPS[name]}", flush=True)
            continue
        if name in IF_NAMED and args.only is None:
            print(f"[{name}] skipped: {IF_NAMED[name]}", flush=True)
            continue
        t = time.perf_counter()
        print(f"[{name}] running ...", flush=True)
        try:
            got = run_section(name, mode, args.device, Path(args.png), args.seeds,
                              Path(args.data) if args.data else None)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        rows += got
        print(f"[{name}] {len(got)} figures in {time.perf_counter() - t:.0f} s", flush=True)
        print_table(got)
    print("\nall sections:", end="")
    print_table(rows)
    out = Path(args.out)
    done = {r["section"] for r in rows}
    kept = _kept_rows(out, done)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS + ["mode", "machine"])
        writer.writeheader()
        writer.writerows(kept)
        writer.writerows({**r, "mode": mode, "machine": where} for r in rows)
    tmp.replace(out)
    print(f"\nwrote {out} ({len(rows)} new rows" + (f", {len(kept)} kept from other sections" if kept else "") + ")"
          + (f"; FAILED sections: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _kept_rows(out: Path, replaced: set[str]) -> list[dict]:
    """Rows of an earlier CSV from sections not measured now: `--only data` keeps the others."""
    if not out.exists():
        return []
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        if set(reader.fieldnames or ()) != set(FIELDS + ["mode", "machine"]):
            return []  # another layout: replaced whole
        return [r for r in reader if r["section"] not in replaced]


if __name__ == "__main__":
    sys.exit(main())
