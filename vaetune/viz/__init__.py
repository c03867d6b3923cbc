"""Latent-space pictures of a trained VAE, from an exported checkpoint or a trial's checkpoint.

The pictures of the commands below (vaetune.commands.pictures saves and describes them; each is a PNG, the walk a GIF; image grids are pixel-exact, `PAD` pixels of white
between images, so a grid of R rows and C columns of HxW images is
`(R * (H + PAD) + PAD) x (C * (W + PAD) + PAD)` pixels, see :func:`grid_pixels`):

- `interpolate CKPT A B`: one row per mode, `A | steps decoded codes | B`; `--grid A B C D`: a
  steps x steps bilinear grid between four corners (A top left, B top right, C bottom left,
  D bottom right). `--mode both` (the default) draws lerp and slerp together: two rows, or two
  grids side by side with one blank column between them (lerp left, slerp right).
- `traverse CKPT`: one row per latent dimension, most informative first (mean KL per dimension
  over the validation encodings), each dimension swept over [-range, range] around the
  encoding of the first validation image.
- `manifold CKPT --data SPACE`: validation encodings (mu) in 2-D — the latent itself when it has
  one or two dimensions, else its first two principal components — coloured by a label; for a
  1-D or 2-D latent also `<out stem>_grid.png`, images decoded over the latent plane at the
  normal quantiles 5%..95% (Kingma & Welling 2014, fig. 4).
- `walk CKPT --out walk.gif`: a closed slerp path through `--anchors` random codes; frames are
  scaled up by the integer `gif_scale(H, W)` (nearest neighbour) so they are at least 128 px.
- `progress TRIAL_DIR`: the first `--n` validation images (column 0) and their reconstructions
  at each checkpoint still in the folder (one column per epoch, in epoch order).
- `neighbours CKPT --data SPACE`: `--n` samples beside their nearest training images, one row
  per sample: sample | nearest by pixel L2 | nearest by Inception pool3 distance (searched in
  the first `--pool` training images; their features are cached like FID's); plus
  `<out stem>_hist.png`, the nearest-neighbour distances of the samples against those of
  validation images (held out, so never memorised): samples much closer to the training set
  than validation images are is memorisation.

Conditional models: images read from files and codes drawn at random are decoded with the class
`--label` (default 0), as `vaetune sample` does; where validation images are used (traverse,
manifold, progress) their own labels go to the encoder and decoder; the samples of `neighbours`
get validation labels in a seeded random order, as FID does; a manifold's latent-plane grid uses
`--cond-label` (default 0).
"""

from __future__ import annotations

from vaetune.viz._grids import (
    FIG_DPI,
    PAD,
    blank,
    check_picture_size,
    figure_png,
    gif_bytes,
    gif_scale,
    grid_pixels,
    grid_png,
    make_grid,
    save_gif,
    save_grid,
    save_preview,
    to_pil,
)
from vaetune.viz._latent import (
    INTERPOLATORS,
    check_shape,
    encode_all,
    interpolation_grid,
    interpolation_picture,
    interpolation_row,
    interpolation_strips,
    kl_order,
    lerp,
    load_val,
    slerp,
    traversal,
    traversal_picture,
    walk_frames,
)
from vaetune.viz._manifold import (
    check_grid_steps,
    latent_plane,
    manifold_figure,
    manifold_picture,
    project_2d,
)
from vaetune.viz._neighbours import (
    Neighbours,
    nearest_features,
    nearest_pixel,
    neighbours,
    neighbours_hist,
)
from vaetune.viz._progress import progress_picture, trial_checkpoints

__all__ = [
    "FIG_DPI", "INTERPOLATORS", "PAD", "Neighbours", "blank", "check_picture_size", "check_shape", "encode_all",
    "figure_png", "gif_bytes", "gif_scale", "grid_pixels", "grid_png", "interpolation_grid", "interpolation_picture",
    "check_grid_steps", "interpolation_row", "interpolation_strips", "kl_order", "latent_plane", "lerp", "load_val", "make_grid", "manifold_figure",
    "manifold_picture", "nearest_features", "nearest_pixel", "neighbours", "neighbours_hist", "progress_picture",
    "project_2d", "save_gif", "save_grid", "save_preview", "slerp", "to_pil", "traversal", "traversal_picture", "trial_checkpoints",
    "walk_frames",
]
