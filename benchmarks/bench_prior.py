"""Fit time of the latent prior (vaetune.models.fit_prior) for the candidate defaults.

    python benchmarks/bench_prior.py [--reps 3] [--sizes 1000,10000,50000] [--dims 8,32,128]
                                     [--candidates diag:10:10000,full:10:2000,...] [--quality]

For every N (posterior means) x D (latent size) x candidate (covariance:components:max_points,
max_points "all" for no subsampling), the seconds of one ``fit_prior`` call, the fastest and
the median of --reps repetitions (the fastest is the least disturbed by other work on a shared
machine). The means are synthetic, shaped like a trained VAE's: 20 heavily overlapping modes
(close to one Gaussian blob, the slow case for EM: tens of iterations where separated modes
need two or three) under a random linear map (correlated dimensions of different scales), with
a quarter of the dimensions collapsed to near zero (inactive units). --threads sets torch's
threads, which fit_prior passes on to scikit-learn's BLAS/OpenMP (1: a trial on a shared
machine). Absolute seconds on this machine, not ratios: the question is whether a trial can
afford the fit at its end. --quality adds a second table: the mean log-likelihood (nats per
code, higher is better) of 10,000 held-out codes under each candidate fitted on the largest N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine  # noqa: E402

CANDIDATES = "diag:10:2000,diag:10:5000,diag:10:10000,spherical:10:5000,tied:10:5000,full:10:2000"


def synthetic_means(n: int, d: int, seed: int = 0) -> np.ndarray:
    """(n, d) float32 codes: 20 overlapping modes, correlated scaled dimensions, d // 4 collapsed ones."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, d)) * 0.3
    x = centres[rng.integers(0, 20, n)] + rng.normal(size=(n, d)) * rng.uniform(0.2, 1.0, size=d)
    x = x @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d))  # correlated dimensions
    x[:, : d // 4] = 0.01 * rng.normal(size=(n, d // 4))  # inactive units: means near 0
    return x.astype(np.float32)


def parse_candidates(text: str) -> list[tuple[str, int, int | None]]:
    out = []
    for item in text.split(","):
        cov, k, m = item.split(":")
        out.append((cov, int(k), None if m == "all" else int(m)))
    return out


def time_fit(x: np.ndarray, cov: str, k: int, max_points: int | None, reps: int) -> list[float]:
    from vaetune.models import fit_prior

    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fit_prior(x, components=k, covariance=cov, max_points=max_points, seed=0)
        times.append(time.perf_counter() - t0)
    return times


def held_out_log_likelihood(prior, codes: np.ndarray) -> float:
    """Mean log-density of codes (n, D) under a LatentMixture, via torch.distributions."""
    import torch
    from torch import distributions as dist

    if prior.covariance in ("full", "tied"):
        tril = prior.scale if prior.covariance == "full" else prior.scale.expand(prior.components, -1, -1)
        comp = dist.MultivariateNormal(prior.means, scale_tril=tril)
    else:
        std = prior.scale if prior.covariance == "diag" else prior.scale[:, None].expand(-1, prior.dim)
        comp = dist.Independent(dist.Normal(prior.means, std), 1)
    mixture = dist.MixtureSameFamily(dist.Categorical(probs=prior.weights), comp)
    return float(mixture.log_prob(torch.from_numpy(codes.astype(np.float64))).mean())


def quality(n: int, dims: list[int], cands: list[tuple[str, int, int | None]]) -> None:
    from vaetune.models import fit_prior

    print(f"# held-out mean log-likelihood (nats/code), fitted on N = {n}, 10,000 fresh codes")
    print(" | ".join(f"{h:>18}" for h in ["D"] + [f"{c}:{k}:{'all' if m is None else m}" for c, k, m in cands]))
    for d in dims:
        codes = synthetic_means(n + 10_000, d)  # one draw: the held-out codes come from the same modes
        train, held = codes[:n], codes[n:]
        cells = [f"{held_out_log_likelihood(fit_prior(train, components=k, covariance=c, max_points=m), held):.3f}"
                 for c, k, m in cands]
        print(" | ".join(f"{v:>18}" for v in [str(d), *cells]), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--sizes", default="1000,10000,50000")
    p.add_argument("--dims", default="8,32,128")
    p.add_argument("--candidates", default=CANDIDATES)
    p.add_argument("--threads", type=int, default=1, help="torch threads, passed on to scikit-learn")
    p.add_argument("--quality", action="store_true", help="also the held-out log-likelihood table")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_info

    blas = ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info())
    print(f"# {machine()}; fits limited to {args.threads} thread(s) (default pools: {blas}); CPU: {_cpu_model()}")
    print("# seconds per fit_prior call: fastest / median of", args.reps)
    cands = parse_candidates(args.candidates)
    time_fit(synthetic_means(500, 8), "diag", 2, None, 1)  # imports scikit-learn outside the timings
    header = ["N", "D"] + [f"{c}:{k}:{'all' if m is None else m}" for c, k, m in cands]
    print(" | ".join(f"{h:>18}" for h in header))
    sizes, dims = [int(s) for s in args.sizes.split(",")], [int(s) for s in args.dims.split(",")]
    for n in sizes:
        for d in dims:
            x = synthetic_means(n, d)
            cells = []
            for cov, k, m in cands:
                t = time_fit(x, cov, k, m, args.reps)
                cells.append(f"{min(t):.3f} / {statistics.median(t):.3f}")
            print(" | ".join(f"{v:>18}" for v in [str(n), str(d), *cells]), flush=True)
    if args.quality:
        quality(max(sizes), dims, cands)
    print(f"# load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
