"""Image grids, PNG bytes and GIFs: pixel-exact layouts with `PAD` white pixels between images."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from vaetune.data import ImageData
from vaetune.outputs import png_info

PAD = 1  # white pixels between the images of a grid
FIG_DPI = 100


def grid_pixels(rows: int, cols: int, h: int, w: int, pad: int = PAD) -> tuple[int, int]:
    """(height, width) in pixels of a grid of rows x cols images of h x w."""
    return rows * (h + pad) + pad, cols * (w + pad) + pad


def make_grid(images: torch.Tensor, ncols: int) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> one (C', H', W') image, row-major, white between images."""
    from torchvision.utils import make_grid as tv_grid

    return tv_grid(images.detach().float().clamp(0, 1).cpu(), nrow=ncols, padding=PAD, pad_value=1.0)


def to_pil(image: torch.Tensor):
    """(C, H, W) in [0, 1] -> PIL image (L, RGB or RGBA)."""
    from PIL import Image

    arr = image.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    return Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (also used by the report)."""
    from vaetune.outputs import SOFTWARE

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI, metadata={"Software": SOFTWARE})
    return buf.getvalue()


def grid_png(images: torch.Tensor, ncols: int) -> bytes:
    """A grid of images (N, C, H, W) in [0, 1] as PNG bytes, marked as vaetune's (vaetune.outputs)."""
    buf = io.BytesIO()
    to_pil(make_grid(images, ncols)).save(buf, format="PNG", pnginfo=png_info())
    return buf.getvalue()


def save_grid(images: torch.Tensor, ncols: int, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(grid_png(images, ncols))
    return out


def check_picture_size(model, images: int, arg: str, what: str) -> None:
    """Refuse a picture of `images` images of the model's shape that cannot fit in memory (as
    float32, twice: the decoded images and their grid), before anything is decoded."""
    from vaetune.machine import check_fits

    c, h, w = model.image_shape
    check_fits(2 * 4 * images * c * h * w, f"{arg}: {what} of {c}x{h}x{w}", f"give a smaller {arg}")


def blank(like: torch.Tensor, n: int = 1) -> torch.Tensor:
    """n white images shaped like one image of `like` (a separator in a grid)."""
    return torch.ones(n, *like.shape[-3:])


def gif_scale(h: int, w: int, target: int = 128) -> int:
    return max(1, target // max(h, w))



def gif_bytes(frames: torch.Tensor, scale: int, ms_per_frame: int = 80) -> bytes:
    """Frames (N, C, H, W) in [0, 1] as a looping GIF, each scaled up `scale` times (nearest
    neighbour), marked as vaetune's (vaetune.outputs)."""
    from PIL import Image

    from vaetune.outputs import gif_comment

    pics = []
    for f in frames:
        if f.shape[0] == 4:  # composite on white: GIF has no partial transparency
            f = f[:3] * f[3:] + (1 - f[3:])
        im = to_pil(f.clamp(0, 1))
        pics.append(im.resize((im.width * scale, im.height * scale), Image.NEAREST).convert("RGB"))
    buf = io.BytesIO()
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], duration=ms_per_frame, loop=0,
                 optimize=False, comment=gif_comment())
    return buf.getvalue()


def save_gif(frames: torch.Tensor, out: Path, scale: int, ms_per_frame: int = 80) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gif_bytes(frames, scale, ms_per_frame))
    return out


PREVIEW = 64  # images in `vaetune data inspect`'s preview grid


def save_preview(data: ImageData, out: Path) -> None:
    """`vaetune data inspect`'s preview: a grid of up to PREVIEW evenly spaced images of `data`
    (the whole collection, not only its first folder), grey between them."""
    from torchvision.utils import make_grid as tv_grid

    if len(data) == 0:
        return
    index = torch.linspace(0, len(data) - 1, min(PREVIEW, len(data))).round().long().unique()
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = tv_grid(data.images[index].float() / 255, nrow=8, padding=2, pad_value=0.5)  # (C, H', W')
    to_pil(grid).save(out, format="PNG", pnginfo=png_info())
