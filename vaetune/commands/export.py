"""`vaetune export RESULTS`, `vaetune sample CKPT`, `vaetune reconstruct CKPT IMG...`: take the best
checkpoint out of a search and use it."""

from __future__ import annotations

import argparse

from vaetune.samplers import SAMPLERS
from vaetune.samplers import get as get_sampler


def register(commands) -> None:
    p = commands.add_parser("export", help="export the best trial's checkpoint of a finished search",
                            description="Write the best trial's checkpoint of a search as one self-contained file.")
    p.add_argument("results", help="results/<name> folder of a search")
    p.add_argument("--metric", default=None, help="rank trials by this metric (default: the search metric)")
    p.add_argument("--mode", choices=["min", "max"], default=None,
                   help="better direction of --metric (default: the metric's own)")
    p.add_argument("--trial", default=None, metavar="ID", help="export this trial instead of the best (any trial "
                   "with a checkpoint, e.g. one on the Pareto front)")
    p.add_argument("--pareto", action="store_true", help="list the Pareto front of a multi-objective search "
                   "(search.metrics) and export nothing")
    p.add_argument("--out", default="best.pt")
    p.add_argument("--register", default=None, metavar="NAME", help="also register it as an MLflow model")
    p.set_defaults(run=run_export)

    p = commands.add_parser("sample", help="draw samples from an exported checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--label", type=int, default=None, help="class label for a conditional model")
    p.add_argument("--sampler", default=None, metavar="{" + ",".join(SAMPLERS) + "}",
                   help="where z comes from: gmm (the mixture fitted to the training set's codes) or normal "
                        "(N(0, I)); default: the one whose samples ranked the model in its search (gmm unless "
                        "the search ranked by N(0, I) samples; normal when the checkpoint holds no mixture)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="samples.png")
    p.set_defaults(run=run_sample)

    p = commands.add_parser("reconstruct", help="encode and decode images with a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+")
    p.add_argument("--out", default="reconstructions",
                   help="folder of NAME_recon.png files (input | reconstruction); inputs of the same name are told "
                        "apart by their folders (cats_im000_recon.png, dogs_im000_recon.png)")
    p.set_defaults(run=run_reconstruct)


def run_export(args: argparse.Namespace) -> int:
    from vaetune.export import export_best
    from vaetune.outputs import output_file
    from vaetune.results import load_search

    if args.pareto:
        return _print_front(args)
    if args.trial is not None and (args.metric or args.mode):
        from vaetune.errors import UserError

        raise UserError("--trial: names the trial to export; --metric and --mode rank trials to pick the best, so "
                        "give one or the other")
    out = output_file(args.out, suffixes=(".pt",))
    exported = export_best(args.results, out, metric=args.metric, mode=args.mode, trial=args.trial)
    if args.trial is not None:
        print(f"trial {exported.trial_id}: {exported.metric} = {exported.value:.5g}; epoch {exported.epoch}")
    else:
        print(f"best trial {exported.trial_id} by {exported.selected_by} = {exported.value:.5g}; "
              f"epoch {exported.epoch}")
    print(f"exported to {exported.path}; `vaetune sample` draws its z from {get_sampler(exported.sampler).words} "
          f"(--sampler {exported.sampler})")
    if args.register:
        from vaetune.tracking import register_model

        state, _ = load_search(args.results)
        version, uri = register_model(exported.path, args.register, exported.source["mlflow_run_id"], state,
                                      args.results)
        print(f"registered in MLflow as {args.register} (version {version}), in {uri}")
    return 0


def _print_front(args: argparse.Namespace) -> int:
    """`vaetune export RESULTS --pareto`: the front's trials, their objectives and how to export each."""
    from vaetune.errors import UserError
    from vaetune.results import load_results

    results = load_results(args.results)
    if not results.objectives:
        raise UserError(f"--pareto: {args.results} searched one objective ({results.metric}); a front needs "
                        "several (search.metrics): export its best trial without --pareto")
    from vaetune.ranking import front_table

    table = front_table(results.summary, results.objectives, results.constraints)
    print(table.text)
    for trial_id in table.members:
        print(f"  vaetune export {args.results} --trial {trial_id} --out {trial_id}.pt")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    import math

    from vaetune.checkpoint import load_model, load_prior, pick_sampler, sample_images
    from vaetune.outputs import output_file
    from vaetune.viz import check_picture_size, save_grid

    out = output_file(args.out)
    model, config, state = load_model(args.checkpoint)
    check_picture_size(model, args.n, "--n", f"{args.n} samples")
    prior = load_prior(state, args.checkpoint, model.latent_dim)
    sampler = pick_sampler(args.sampler, prior, args.checkpoint, config)
    images = sample_images(model, args.n, label=args.label, seed=args.seed,
                           prior=prior if sampler.fitted else None)
    save_grid(images, max(1, int(math.ceil(math.sqrt(args.n)))), out)
    print(f"{args.n} samples (z from {sampler.words}, --sampler {sampler.name}) -> {out}")
    return 0


def run_reconstruct(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from vaetune.checkpoint import load_model, reconstruct
    from vaetune.errors import UserError
    from vaetune.outputs import distinct_names, output_file
    from vaetune.viz import save_grid

    model, config, _ = load_model(args.checkpoint)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} is a file; give a folder for the reconstructions")
    targets = [output_file(out / f"{name}_recon.png", what="--out") for name in distinct_names(args.images)]
    pairs = [(path, *reconstruct(model, config, path)) for path in args.images]  # every image read before writing
    for (path, x, recon), target in zip(pairs, targets, strict=True):
        save_grid(torch.cat([x, recon]), 2, target)  # input | reconstruction
        print(f"{path} -> {target}")
    return 0
