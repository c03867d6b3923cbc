"""One sensible default VAE trained for the whole budget: what most users run instead of a search.

    python benchmarks/default_model.py --train DIR --out DIR [--epochs 1000] [--seed 0]

The original project's default configuration, written plainly as its script trains a model: the
conv VAE of peer_script.py (4 stride-2 convolutions with batch norm, 64 -> 512 channels, and their
mirror) with a latent of 128, MSE summed over pixels + beta * KL with beta = 1 warmed up linearly
over the first 5 epochs, Adam at lr 1e-3, batch 64; the images are PNG files read by torchvision's
ImageFolder through a DataLoader every epoch. No search, no evaluation while training: every core
trains (torch's threads), and after every epoch the model is saved (`--out`/epoch_NNNN/model.pt,
peer_script's format, written to a temporary name and renamed) and one line is printed with the
time. Stopped by Ctrl-C (SIGINT), as a user stops it, it keeps what it saved: the model it hands
its user is the last one saved. Plain torch and torchvision: no vaetune code anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from peer_script import MODEL_FILE, ConvVAE, vae_loss

DEFAULTS = {"latent_dim": 128, "beta": 1.0, "warmup_epochs": 5, "lr": 1e-3, "batch_size": 64}


def train(train_dir: str, out: Path, epochs: int, seed: int) -> None:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    data = datasets.ImageFolder(train_dir, transform=transforms.ToTensor())
    loader = DataLoader(data, batch_size=DEFAULTS["batch_size"], shuffle=True)
    model = ConvVAE(DEFAULTS["latent_dim"], side=data[0][0].shape[-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=DEFAULTS["lr"])
    warmup_steps = DEFAULTS["warmup_epochs"] * len(loader)
    step, t0 = 0, time.time()
    for epoch in range(1, epochs + 1):
        for x, _ in loader:
            recon, mu, logvar = model(x)
            beta = DEFAULTS["beta"] * min(1.0, step / warmup_steps)
            loss = vae_loss(recon, x, mu, logvar, beta)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        folder = out / f"epoch_{epoch:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / (MODEL_FILE + ".part")
        torch.save({"model": model.state_dict(), "latent_dim": model.latent_dim, "side": model.side}, part)
        os.replace(part, folder / MODEL_FILE)
        print(json.dumps({"epoch": epoch, "timestamp": time.time(), "seconds": time.time() - t0,
                          "loss": loss.item(), "checkpoint": str(folder)}), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="folder with one sub-folder of training PNGs")
    p.add_argument("--out", required=True, help="where each epoch's model is saved")
    p.add_argument("--epochs", type=int, default=1000, help="an upper bound: the run is stopped at its budget")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        train(str(Path(args.train).resolve()), Path(args.out), args.epochs, args.seed)
    except KeyboardInterrupt:
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
