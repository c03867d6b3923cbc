"""Reconstruction and sample grids written during training.

`recon_epochNNNN.png`: rows alternate between validation images and their reconstructions.
`samples_epochNNNN.png`: images decoded from z drawn from a generator seeded with GRID_SEED, the
way the configuration's user is handed samples (`Config.handed_sampler`): from N(0, I) the same z
at every epoch and in every trial, so grids compare across epochs and trials; from the fitted
latent mixture, the epoch's own mixture drawn with that seed. The report's picture table draws
the same way. GRID_SEED is owned here; vaetune.report imports it.
"""

from __future__ import annotations

from pathlib import Path

GRID_SEED = 1234  # fixed z for sample grids: comparable across epochs and trials


class GridWriter:
    """Reconstruction and sample grids from fixed validation images and a fixed z."""

    def __init__(self, model, val_x, val_y, num_classes: int, size: int, device: str):
        import torch
        import torchvision.utils  # noqa: F401  imported now (~0.3 s), not inside the first grid epoch

        self.model, self.device, self.size = model, device, size
        n_pairs = min(size * size // 2, len(val_x))
        self.x = val_x[:n_pairs]  # (n, C, H, W) uint8
        self.y = None if val_y is None else val_y[:n_pairs]
        g = torch.Generator().manual_seed(GRID_SEED)
        self.z = torch.randn(size * size, model.latent_dim, generator=g)  # (size², D)
        # conditional models: one class per row, so rows compare classes
        self.zy = (torch.arange(size * size) // size) % num_classes if num_classes else None

    def write(self, folder: Path, epoch: int, prior=None) -> list[Path]:
        """Write both grids of `epoch` into `folder`, the samples decoded from z drawn from `prior`
        (a fitted vaetune.models.LatentMixture) when given, else the fixed z ~ N(0, I); returns
        [recon PNG, samples PNG]."""
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        self.model.eval()
        with torch.inference_mode():
            x = self.x.to(self.device).float() / 255  # (n, C, H, W)
            y = None if self.y is None else self.y.to(self.device)
            recon = self.model(x, y).recon.float()  # (n, C, H, W)
            zy = None if self.zy is None else self.zy.to(self.device)
            z = self.z if prior is None else prior.sample(len(self.z), torch.Generator().manual_seed(GRID_SEED))
            samples = self.model.decode(z.to(self.device), zy).float()  # (size², C, H, W)
        # rows alternate: originals, then their reconstructions
        pairs = torch.stack([x, recon], 0)  # (2, n, C, H, W)
        rows = []
        for start in range(0, len(x), self.size):
            rows += [pairs[0, start:start + self.size], pairs[1, start:start + self.size]]
        recon_path = folder / f"recon_epoch{epoch:04d}.png"
        sample_path = folder / f"samples_epoch{epoch:04d}.png"
        _save_marked(torch.cat(rows).cpu(), recon_path, self.size)
        _save_marked(samples.cpu(), sample_path, self.size)
        return [recon_path, sample_path]


def _save_marked(images, path: Path, nrow: int) -> None:
    """torchvision's save_image (the same pixels), the PNG carrying vaetune's mark (vaetune.outputs): a
    grid is many images, and `vaetune fid` refuses to take it for one."""
    import torch
    from PIL import Image
    from torchvision.utils import make_grid

    from vaetune.outputs import png_info

    grid = make_grid(images, nrow=nrow, padding=1)
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8)
    Image.fromarray(pixels.numpy()).save(path, format="PNG", pnginfo=png_info())
