"""`vaetune interpolate|traverse|manifold|walk|progress|neighbours`: latent-space pictures of a
trained VAE (the pictures themselves are drawn by vaetune.viz)."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser("interpolate", help="interpolate between images in latent space")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="*", help="IMG_A IMG_B")
    p.add_argument("--mode", choices=["lerp", "slerp", "both"], default="both",
                   help="both (default): a lerp row (or grid) and a slerp one side by side")
    p.add_argument("--grid", nargs=4, metavar=("A", "B", "C", "D"), help="10x10 bilinear grid between 4 corners")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--label", type=int, default=None, help="class for a conditional model (default 0)")
    p.add_argument("--out", default="interpolation.png")
    p.set_defaults(run=run_interpolate)

    p = commands.add_parser("traverse", help="latent traversals, one row per dimension, by KL")
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None, help="search space whose validation images pick the base code and KL order")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--range", type=float, default=3.0)
    p.add_argument("--label", type=int, default=None,
                   help="class for a conditional model (default: the first validation image's)")
    p.add_argument("--out", default="traversal.png")
    p.set_defaults(run=run_traverse)

    p = commands.add_parser("manifold", help="validation encodings coloured by label")
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="search-space YAML of the data")
    p.add_argument("--label", default=None, help="which label colours the points (default: the first)")
    p.add_argument("--grid-steps", type=int, default=10, help="1-D/2-D latent: images per side of the decoded grid")
    p.add_argument("--cond-label", type=int, default=None, help="class decoding the grid of a conditional model (default 0)")
    p.add_argument("--out", default="manifold.png")
    p.set_defaults(run=run_manifold)

    p = commands.add_parser("walk", help="an animated walk through latent space (GIF)")
    p.add_argument("checkpoint")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--anchors", type=int, default=5, help="random codes the closed path passes through")
    p.add_argument("--label", type=int, default=None, help="class for a conditional model (default 0)")
    p.add_argument("--out", default="walk.gif")
    p.set_defaults(run=run_walk)

    p = commands.add_parser("progress", help="reconstructions at each saved checkpoint of a trial")
    p.add_argument("trial_dir")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--out", default="progress.png")
    p.set_defaults(run=run_progress)

    p = commands.add_parser("neighbours", help="samples beside their nearest training images")
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="search-space YAML of the training data")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--pool", type=int, default=None,
                   help="training images searched by Inception distance (default: all on a GPU, 256 on CPU)")
    p.add_argument("--no-inception", action="store_true", help="pixel distances only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="neighbours.png")
    p.set_defaults(run=run_neighbours)


def _done(out, what: str) -> None:
    from PIL import Image

    with Image.open(out) as im:
        print(f"{what} -> {out} ({im.width}x{im.height} px)")


def run_interpolate(args: argparse.Namespace) -> int:
    from vaetune.checkpoint import load_model
    from vaetune.errors import UserError
    from vaetune.outputs import output_file
    from vaetune.viz import interpolation_picture, save_grid

    if args.grid and args.images:
        raise UserError("give either IMG_A IMG_B or --grid A B C D, not both")
    out = output_file(args.out)
    model, config, _ = load_model(args.checkpoint)
    images, ncols, modes = interpolation_picture(model, config, args.grid or args.images, grid=bool(args.grid),
                                                 mode=args.mode, steps=args.steps, label=args.label)
    _done(save_grid(images, ncols, out), f"{' and '.join(modes)} interpolation")
    return 0


def run_traverse(args: argparse.Namespace) -> int:
    from vaetune.checkpoint import load_model
    from vaetune.outputs import output_file
    from vaetune.viz import check_shape, load_val, save_grid, traversal_picture

    out = output_file(args.out)
    model, config, _ = load_model(args.checkpoint)
    _, x, y = load_val(config, args.data)
    check_shape(model, x, args.data or args.checkpoint)
    images, order, kl = traversal_picture(model, x, y, steps=args.steps, span=args.range, label=args.label)
    save_grid(images, args.steps, out)
    for row, d in enumerate(order):
        print(f"row {row + 1}: z[{d}]  KL {kl[d]:.3f} nats")
    _done(out, f"traversal of {model.latent_dim} dimensions")
    return 0


def run_manifold(args: argparse.Namespace) -> int:
    from vaetune.checkpoint import class_labels, load_model
    from vaetune.outputs import output_file
    from vaetune.viz import (
        check_grid_steps,
        check_shape,
        latent_plane,
        load_val,
        manifold_picture,
        save_grid,
    )

    check_grid_steps(args.grid_steps)
    out = output_file(args.out)
    model, config, _ = load_model(args.checkpoint)
    plane = output_file(out.with_name(f"{out.stem}_grid.png"), what="--out (its _grid.png)") \
        if model.latent_dim <= 2 else None
    data, x, y = load_val(config, args.data)
    check_shape(model, x, args.data)
    png = manifold_picture(model, data, x, y, label=args.label)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    _done(out, "manifold")
    if plane is not None:
        cond = class_labels(model, 1, args.cond_label) if model.num_classes else None
        images, cols = latent_plane(model, args.grid_steps, cond)
        _done(save_grid(images, cols, plane), "decoded latent plane")
    return 0


def run_walk(args: argparse.Namespace) -> int:
    from vaetune.checkpoint import class_labels, load_model
    from vaetune.outputs import output_file
    from vaetune.viz import gif_scale, save_gif, walk_frames

    out = output_file(args.out, suffixes=(".gif",))
    model, _, _ = load_model(args.checkpoint)
    frames = walk_frames(model, args.frames, args.anchors, args.seed, class_labels(model, 1, args.label))
    _, h, w = model.image_shape
    save_gif(frames, out, gif_scale(h, w))
    print(f"{args.frames} frames through {args.anchors} anchors -> {out}")
    return 0


def run_progress(args: argparse.Namespace) -> int:
    from vaetune.outputs import output_file
    from vaetune.viz import progress_picture, save_grid

    out = output_file(args.out)
    images, ncols, epochs = progress_picture(args.trial_dir, args.n)
    save_grid(images, ncols, out)
    print("columns: original, then epochs " + ", ".join(str(e) for e in epochs))
    _done(out, f"{len(images) // ncols} images at {len(epochs)} checkpoints")
    return 0


def run_neighbours(args: argparse.Namespace) -> int:
    from vaetune.checkpoint import load_model
    from vaetune.outputs import output_file
    from vaetune.viz import check_shape, load_val, neighbours, save_grid

    out = output_file(args.out)
    hist = output_file(out.with_name(f"{out.stem}_hist.png"), what="--out (its _hist.png)")
    model, config, _ = load_model(args.checkpoint)
    data, val_x, val_y = load_val(config, args.data)
    check_shape(model, val_x, args.data)
    found = neighbours(model, config, data, val_x, val_y, n=args.n, pool=args.pool, inception=not args.no_inception,
                       seed=args.seed)
    if found.pool is not None:
        print(f"Inception distances searched the first {found.pool} of {len(data.subset('train')[0])} training images")
    save_grid(found.images, found.columns, out)
    hist.write_bytes(found.histogram)
    print(f"median RMS pixel distance to the nearest training image: samples {found.pixel_samples:.4f}, "
          f"validation images {found.pixel_validation:.4f} (ratio {found.ratio:.2f})")
    if found.ratio < 0.5:
        print("samples sit much closer to training images than held-out images do: a sign of memorisation")
    _done(out, "columns: sample | nearest by pixels" + (" | nearest by Inception" if found.pool is not None else ""))
    _done(hist, "distance histogram")
    return 0
