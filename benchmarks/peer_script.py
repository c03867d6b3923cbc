"""The search a user writes from Ray Tune's, Optuna's and pytorch-fid's docs, without vaetune.

    python benchmarks/peer_script.py --train DIR --val DIR --storage DIR [--name NAME] [--space JSON]
                                     [--epochs 6] [--batch-size 32] [--fid-n 64] [--num-samples 1000]
                                     [--max-concurrent 2] [--seed 0] [--dims 2048]

The original project's script, written plainly: a conv VAE (4 stride-2 convolutions with batch
norm, 64 -> 512 channels, and their mirror), MSE + beta * KL with beta warmed up linearly, Adam;
the images are PNG files read by torchvision's ImageFolder through a DataLoader every epoch
(--train and --val each hold one sub-folder of PNGs); after every epoch the FID of --fid-n
samples against the first --fid-n validation files (pytorch-fid: its Inception, the files'
statistics through its DataLoader once per trial, its Frechet distance; --dims its feature
layer) and a checkpoint of the model. Ray Tune runs it with OptunaSearch (Optuna's default
sampler, TPE) under a ConcurrencyLimiter and ASHA, as Ray Tune's Optuna example and its PyTorch
tutorial do. Plain torch, torchvision, Ray, Optuna and pytorch-fid: no vaetune code anywhere.

--space is JSON: each key (lr, beta, latent_dim, warmup_epochs) a number, or
["loguniform", low, high], ["uniform", low, high] or ["choice", [values]].
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

MODEL_FILE = "model.pt"
DEFAULT_SPACE = {"lr": ["loguniform", 1e-4, 3e-3], "beta": ["loguniform", 1e-3, 10.0],
                 "latent_dim": ["choice", [4, 8, 16, 32]], "warmup_epochs": ["uniform", 0, 3]}


class ConvVAE(nn.Module):
    """4 stride-2 conv layers with batch norm (64 -> 512 channels), a linear latent, the mirror back."""

    def __init__(self, latent_dim: int, side: int):
        super().__init__()
        chans = [3, 64, 128, 256, 512]
        self.latent_dim, self.side, self.cells = latent_dim, side, side // 16
        self.encoder = nn.Sequential(*[layer for i in range(4) for layer in (
            nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1), nn.BatchNorm2d(chans[i + 1]), nn.LeakyReLU(0.2))])
        flat = 512 * self.cells * self.cells
        self.mu, self.logvar = nn.Linear(flat, latent_dim), nn.Linear(flat, latent_dim)
        self.project = nn.Linear(latent_dim, flat)
        up = [layer for i in range(4, 1, -1) for layer in (
            nn.ConvTranspose2d(chans[i], chans[i - 1], 4, 2, 1), nn.BatchNorm2d(chans[i - 1]), nn.LeakyReLU(0.2))]
        self.decoder = nn.Sequential(*up, nn.ConvTranspose2d(64, 3, 4, 2, 1), nn.Sigmoid())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, 512, self.cells, self.cells)
        return self.decoder(h)  # (B, 3, side, side) in [0, 1]

    def forward(self, x: torch.Tensor):
        h = self.encoder(x).flatten(1)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def vae_loss(recon, x, mu, logvar, beta: float) -> torch.Tensor:
    mse = nn.functional.mse_loss(recon, x, reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
    return mse + beta * kl


def sample_fid(model: ConvVAE, inception, n: int, real_mu, real_sigma) -> float:
    """pytorch-fid's FID of n samples from N(0, I) against the real images' statistics."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    model.eval()
    with torch.no_grad():
        fake = model.decode(torch.randn(n, model.latent_dim))
        pred = inception(fake)[0]
        if pred.size(2) != 1 or pred.size(3) != 1:  # as pytorch-fid's get_activations does below 2048
            pred = nn.functional.adaptive_avg_pool2d(pred, output_size=(1, 1))
        act = pred.squeeze(3).squeeze(2).numpy()
    model.train()
    return float(calculate_frechet_distance(np.mean(act, axis=0), np.cov(act, rowvar=False), real_mu, real_sigma))


def train_vae(config: dict, *, train_dir: str, val_dir: str, epochs: int, batch_size: int, fid_n: int,
              seed: int, dims: int = 2048) -> None:
    """Ray Tune function trainable: one VAE, FID and a checkpoint after every epoch."""
    from pytorch_fid.fid_score import calculate_activation_statistics
    from pytorch_fid.inception import InceptionV3
    from ray import tune
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    data = datasets.ImageFolder(train_dir, transform=transforms.ToTensor())
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    model = ConvVAE(config["latent_dim"], side=data[0][0].shape[-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    inception = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[dims]]).eval()
    real = sorted(str(f) for f in Path(val_dir).rglob("*.png"))[:fid_n]
    real_mu, real_sigma = calculate_activation_statistics(real, inception, batch_size=50, dims=dims, num_workers=0)
    warmup_steps = config["warmup_epochs"] * len(loader)
    step = 0
    for epoch in range(1, epochs + 1):
        for x, _ in loader:
            recon, mu, logvar = model(x)
            beta = config["beta"] * min(1.0, step / warmup_steps) if warmup_steps else config["beta"]
            loss = vae_loss(recon, x, mu, logvar, beta)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        fid = sample_fid(model, inception, fid_n, real_mu, real_sigma)
        with tempfile.TemporaryDirectory() as folder:
            torch.save({"model": model.state_dict(), "latent_dim": model.latent_dim, "side": model.side},
                       Path(folder) / MODEL_FILE)
            tune.report({"fid": fid, "epoch": epoch, "loss": loss.item()},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def load_decoder(checkpoint: str | Path):
    """(decode(z) -> images in [0, 1], latent size) of a checkpoint this script wrote."""
    state = torch.load(Path(checkpoint) / MODEL_FILE, map_location="cpu", weights_only=True)
    model = ConvVAE(state["latent_dim"], state["side"])
    model.load_state_dict(state["model"])
    return model.eval().decode, model.latent_dim


def tune_space(space: dict) -> dict:
    from ray import tune

    kinds = {"loguniform": tune.loguniform, "uniform": tune.uniform, "choice": tune.choice}
    return {k: kinds[v[0]](*v[1:]) if isinstance(v, list) else v for k, v in space.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="folder with one sub-folder of training PNGs")
    p.add_argument("--val", required=True, help="folder with one sub-folder of validation PNGs")
    p.add_argument("--storage", required=True, help="Ray Tune's storage_path")
    p.add_argument("--name", default="peer")
    p.add_argument("--space", default=json.dumps(DEFAULT_SPACE))
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--fid-n", type=int, default=64)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--max-concurrent", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dims", type=int, default=2048, choices=[64, 192, 768, 2048], help="pytorch-fid's feature layer")
    args = p.parse_args(argv)

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    ray.init()
    train, val = (str(Path(d).resolve()) for d in (args.train, args.val))  # trials run in folders of their own
    trainable = tune.with_parameters(train_vae, train_dir=train, val_dir=val, epochs=args.epochs,
                                     batch_size=args.batch_size, fid_n=args.fid_n, seed=args.seed,
                                     dims=args.dims)
    searcher = ConcurrencyLimiter(OptunaSearch(metric="fid", mode="min", seed=args.seed),
                                  max_concurrent=args.max_concurrent)
    scheduler = ASHAScheduler(metric="fid", mode="min", max_t=args.epochs, grace_period=1, reduction_factor=2)
    tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), param_space=tune_space(json.loads(args.space)),
                       tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                                   num_samples=args.num_samples),
                       run_config=tune.RunConfig(name=args.name, storage_path=str(Path(args.storage).resolve())))
    results = tuner.fit()
    scored = [r for r in results if r.metrics and "fid" in r.metrics]
    if scored:
        best = results.get_best_result(metric="fid", mode="min", scope="all")
        print(f"best FID {best.metrics_dataframe['fid'].min():.2f} with {best.config}")
    else:
        print("no trial reported a FID")


if __name__ == "__main__":
    main()
