"""The gallery's sections, each drawing its pictures side by side for the compared trials or for
the one it explores: samples, reconstructions, latent explorer, interpolation, epochs and memory,
export. Each takes (gallery, chosen entries, their loaded models, the sidebar's sampling)."""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st
import torch

from vaetune.errors import UserError
from vaetune.fileio import is_remote
from vaetune.gallery import _pictures as pictures
from vaetune.gallery._page import (
    as_user_error,
    dims_of,
    images_of,
    label_of,
    model_at,
    shielded,
    show,
)
from vaetune.gallery._server import SHOWN
from vaetune.gallery._target import export_bytes, kept_checkpoints
from vaetune.samplers import NORMAL
from vaetune.samplers import get as get_sampler
from vaetune.viz import gif_bytes, gif_scale

RECON_IMAGES = 8  # validation images reconstructed unless the user asks for more
NEIGHBOURS = 5  # training images shown beside a sample
COPY_RATIO = 0.5  # a sample this much nearer to a training image than validation images are: a copy


def _one(chosen, loaded, key: str, what: str):
    """The one compared trial a section explores (a choice when several are compared)."""
    if len(chosen) == 1:
        return chosen[0], loaded[0]
    i = st.selectbox(what, range(len(chosen)), format_func=lambda j: chosen[j].label, key=key)
    return chosen[i], loaded[i]


def _sampled(m, s) -> torch.Tensor:
    return pictures.samples(m, s["n"], s["seed"], s["sampler"], s["temperature"], label_of(m, s["label"]))


def samples(gallery, chosen, loaded, s) -> None:
    for col, entry, m in zip(st.columns(len(chosen)), chosen, loaded, strict=True):
        with shielded(col):
            show(col, f"samples_{entry.key}", _sampled(m, s), f"{entry.label} · epoch {m.epoch}")
    if get_sampler(s["sampler"]).fitted:
        how = "each trial's fitted latent mixture, drawn with the same seed"
    else:
        how = "N(0, I): the very same z for every trial of one latent size"
    st.caption(f"z from {how} (seed {s['seed']}), scaled by {s['temperature']:g}; at temperature 1 these are "
               f"`vaetune sample --seed {s['seed']} --sampler {s['sampler']}`.")


def _validation(m, n: int, seed: int):
    """n validation images of a model's data (the same ones for every trial of a search), in [0, 1],
    and their labels for a conditional model."""
    imgs = images_of(m)
    index = imgs.pick(n, seed)
    return imgs.val[index].float().div(255), pictures.labels_for(m, imgs, index, len(index), None)


def reconstructions(gallery, chosen, loaded, s) -> None:
    left, right = st.columns(2)
    n = left.slider("validation images", 1, 32, RECON_IMAGES, key="recon_n")
    pick = right.number_input("which ones (seed)", min_value=0, step=1, key="recon_seed")
    uploads = st.file_uploader("Your images: each is resized and composited as the model's data settings say",
                               accept_multiple_files=True, key="uploads") or []
    for col, entry, m in zip(st.columns(len(chosen)), chosen, loaded, strict=True):
        with shielded(col):
            x, y = _validation(m, n, int(pick))
            show(col, f"recon_{entry.key}", torch.cat([x, pictures.reconstruct(m, x, y)]),
                 f"{entry.label}: validation images (top), reconstructions (bottom)", ncols=len(x))
        for i, f in enumerate(uploads):
            with shielded(col):
                x = pictures.read_upload(m, f.getvalue(), f.name)
                y = pictures.labels_for(m, None, None, 1, label_of(m, s["label"]))
                show(col, f"upload_{entry.key}_{i}", torch.cat([x, pictures.reconstruct(m, x, y)]),
                     f"{f.name}: yours | its reconstruction", ncols=2)


def explorer(gallery, chosen, loaded, s) -> None:
    entry, m = _one(chosen, loaded, "explore_trial", "trial to explore")
    imgs = images_of(m)
    i = int(st.number_input(f"validation image (0 to {len(imgs.val) - 1})", 0, len(imgs.val) - 1, 0, 1,
                            key="explore_image"))
    index = torch.tensor([i])
    x = imgs.val[index].float().div(255)
    y = pictures.labels_for(m, imgs, index, 1, None)
    base = pictures.code_of(m, x, y)
    dims, kl = dims_of(m)
    top = dims[:pictures.EXPLORER_DIMS]
    left, right = st.columns([1, 2])
    left.caption(f"the {len(top)} most active of {len(dims)} dimensions (mean KL over validation images), "
                 "starting at this image's code")
    values = {}
    for d in top:
        v = float(base[d])
        lo, hi = min(-4.0, math.floor(v)), max(4.0, math.ceil(v))
        values[d] = left.slider(f"z[{d}] · KL {float(kl[d]):.2f} nats", lo, hi, v, 0.05, key=f"z_{entry.key}_{i}_{d}")
    code = base.clone()
    for d, v in values.items():
        code[d] = v
    show(right, f"explorer_{entry.key}", torch.cat([x, pictures.reconstruct(m, x, y), pictures.explore(m, base, values, y)]),
         f"{entry.label}: the image | its reconstruction | the sliders' code decoded", ncols=3)
    a, b, c = right.columns(3)
    dim = a.selectbox("traverse", dims, format_func=lambda d: f"z[{d}] · KL {float(kl[d]):.2f}", key="strip_dim")
    span = b.slider("reach either side", 0.5, 5.0, 3.0, 0.5, key="strip_span")
    steps = c.slider("steps", 3, 15, 9, 2, key="strip_steps")
    show(right, f"traversal_{entry.key}", pictures.strip(m, code, dim, steps, span, y),
         f"z[{dim}] swept over ±{span:g} around the sliders' code (centre: that code decoded)", ncols=steps)


def _endpoint(m, imgs, which: str, default: int):
    """Image A or B of an interpolation: an upload when given, else a validation image."""
    up = st.file_uploader(f"{which}: upload an image, or pick a validation image below", key=f"interp_up_{which}")
    if up is not None:
        return pictures.read_upload(m, up.getvalue(), up.name)
    if imgs is None:
        raise UserError(f"{which}: this model's validation images are not on this machine; upload an image")
    i = st.number_input(f"{which}: validation image", 0, len(imgs.val) - 1, default, 1, key=f"interp_{which}")
    return imgs.val[int(i):int(i) + 1].float().div(255)


def interpolation(gallery, chosen, loaded, s) -> None:
    entry, m = _one(chosen, loaded, "interp_trial", "trial to interpolate with")
    try:
        imgs = images_of(m)
    except UserError as err:
        imgs = None
        st.info(str(err))
    left, right = st.columns(2)
    with left:
        xa = _endpoint(m, imgs, "A", 0)
    with right:
        xb = _endpoint(m, imgs, "B", 1)
    steps = st.slider("steps between A and B", 2, 16, 8, key="interp_steps")
    y = pictures.labels_for(m, None, None, 1, label_of(m, s["label"]))
    rows = pictures.interpolate(m, torch.cat([xa, xb]), steps, y)
    show(st, f"interpolation_{entry.key}", rows,
         f"{entry.label}: lerp (top), slerp (bottom): A | {steps} decoded codes | B", ncols=steps + 2)
    path = rows[steps + 3:2 * steps + 3]  # the slerp row's decoded codes, A's reconstruction to B's
    gif = gif_bytes(torch.cat([path, path.flip(0)[1:-1]]), gif_scale(*m.model.image_shape[1:]), 120)
    st.session_state[SHOWN][f"interpolation_{entry.key}_gif"] = gif
    st.image(gif, caption="slerp from A to B and back")
    st.download_button("GIF", gif, file_name=f"interpolation_{entry.key}.gif", mime="image/gif", key="gif")


def epochs(gallery, chosen, loaded, s) -> None:
    entry, _ = _one(chosen, loaded, "epochs_trial", "trial")
    kept = kept_checkpoints(entry)
    at = next((i for i, (_, path) in enumerate(kept) if Path(path) == Path(entry.checkpoint)), len(kept) - 1)
    if len(kept) > 1:
        at = st.select_slider("kept checkpoint", range(len(kept)), at, key=f"epoch_{entry.key}",
                              format_func=lambda i: f"epoch {kept[i][0]}" if kept[i][0] is not None else Path(kept[i][1]).name)
    elif not entry.trial_path:
        st.caption("a checkpoint file holds one epoch")
    else:
        st.caption("one checkpoint: the trial keeps no other here (or its folder is in remote storage)")
    m = model_at(kept[at][1])
    left, right = st.columns(2)
    sampler = s["sampler"] if m.prior is not None else NORMAL.name
    z = dict(s, sampler=sampler)
    drawn = _sampled(m, z)
    show(left, f"epoch_samples_{entry.key}", drawn, f"samples at epoch {m.epoch} (z as in the sidebar)")
    with shielded(right):
        x, y = _validation(m, RECON_IMAGES, 0)
        show(right, f"epoch_recon_{entry.key}", torch.cat([x, pictures.reconstruct(m, x, y)]),
             f"validation images and their reconstructions at epoch {m.epoch}", ncols=len(x))
    st.subheader("Is it a copy?")
    imgs = images_of(m)
    k = int(st.number_input(f"sample (0 to {len(drawn) - 1}, row by row)", 0, len(drawn) - 1, 0, 1, key="memory"))
    d, near = pictures.nearest_training(imgs, drawn[k:k + 1], NEIGHBOURS)
    show(st, f"nearest_{entry.key}", torch.cat([drawn[k:k + 1], near]),
         "the sample | its nearest training images by pixels, nearest first", ncols=len(near) + 1)
    held_out = pictures.validation_distance(imgs)
    verdict = "close to a copy of it" if float(d[0]) < COPY_RATIO * held_out else "not a copy"
    st.write(f"RMS pixel distance to the nearest training image: {float(d[0]):.4f} (the next: "
             f"{', '.join(f'{float(v):.4f}' for v in d[1:])}); held-out validation images lie a median "
             f"{held_out:.4f} from theirs: {verdict}. (`vaetune neighbours` also searches by Inception features.)")


def export(gallery, chosen, loaded, s) -> None:
    for entry in chosen:
        if not is_remote(entry.checkpoint) and not Path(entry.checkpoint).exists():
            st.error(f"export: {entry.label}: its checkpoint {entry.checkpoint} is no longer there (moved or removed "
                     "since the gallery started); start `vaetune gallery` again on the folder where it is now")
            continue
        if gallery.results is None:
            path = Path(entry.checkpoint)
            name = path.name if path.is_file() else f"{path.name}.pt"
            st.download_button(f"Checkpoint {name} (the file itself)", as_user_error(lambda p=path: _file_bytes(p)),
                               file_name=name, mime="application/octet-stream", key=f"export_{entry.key}")
            continue
        st.download_button(f"Checkpoint of {entry.label}, as vaetune export writes it",
                           as_user_error(lambda k=entry.key: export_bytes(gallery, k)),
                           file_name=f"{gallery.results.name}-{entry.key}.pt",
                           mime="application/octet-stream", key=f"export_{entry.key}")
    st.caption("Every picture has its own PNG button under it; `vaetune sample`, `reconstruct` and `interpolate` "
               "draw the same pictures from the exported file.")


def _file_bytes(path: Path) -> bytes:
    from vaetune.checkpoint import CHECKPOINT_FILE

    return (path / CHECKPOINT_FILE if path.is_dir() else path).read_bytes()
