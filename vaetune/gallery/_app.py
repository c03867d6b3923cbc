"""The gallery's page, a Streamlit script: `vaetune gallery` serves it on 127.0.0.1 with its target
in the environment (TARGET_ENV); tests drive it with Streamlit's AppTest.

Top: the trials ranked by the search metric and the choice of up to four to compare. Sidebar: how
samples are drawn (sampler, temperature, count, seed, class), shared by every section. One section
runs at a time (samples, reconstructions, latent explorer, interpolation, epochs and memory,
export), so an interaction recomputes only what it shows.
"""

from __future__ import annotations

import os

import streamlit as st

from vaetune.checkpoint import pick_sampler
from vaetune.gallery import _sections as sections
from vaetune.gallery._page import (
    begin,
    elapsed,
    gallery_at,
    model_at,
    moved_away,
    quiet_download_failures,
    shielded,
)
from vaetune.gallery._pictures import MAX_SAMPLES
from vaetune.gallery._server import TARGET_ENV
from vaetune.gallery._target import Gallery
from vaetune.samplers import available
from vaetune.samplers import get as get_sampler

MAX_COMPARED = 4
SECTIONS = {
    "Samples": sections.samples,
    "Reconstructions": sections.reconstructions,
    "Latent explorer": sections.explorer,
    "Interpolation": sections.interpolation,
    "Epochs and memory": sections.epochs,
    "Export": sections.export,
}


def _compare_best_two(gallery: Gallery) -> None:
    st.session_state["trials"] = [e.key for e in gallery.entries[:2]]


def pick_trials(gallery: Gallery) -> list:
    """The trial table and the choice of the trials shown side by side (the best one by default)."""
    if gallery.table is None:
        st.caption(f"{gallery.source}: one model")
        return gallery.entries
    st.dataframe(gallery.table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format=f) for c, f in gallery.formats.items()})
    for note in gallery.notes:
        st.caption(note)
    keys = [e.key for e in gallery.entries]
    labels = {e.key: e.label for e in gallery.entries}
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    st.session_state.setdefault("trials", keys[:1])  # set here, not as a default: a button sets it too
    chosen = left.multiselect(f"Trials shown side by side (up to {MAX_COMPARED})", keys, format_func=labels.get,
                              max_selections=MAX_COMPARED, key="trials")
    if len(keys) > 1:
        right.button("Compare the best two", on_click=_compare_best_two, args=(gallery,), key="best_two")
    return [gallery.entry(k) for k in chosen]


def _new_seed() -> None:
    st.session_state["seed"] = int(st.session_state.get("seed", 0)) + 1


def sampling(loaded: list) -> dict:
    """The sidebar: how every section's samples are drawn."""
    bar = st.sidebar
    bar.header("Samples")
    # selected at first: the sampler whose samples ranked the trials (vaetune sample's default); N(0, I)
    # gives the very same z to every compared trial (of one latent size), each fitted mixture is a trial's own
    options = [s.name for s in available(all(m.prior is not None for m in loaded))]
    handed = pick_sampler(None, loaded[0].prior, loaded[0].path, loaded[0].config).name if loaded else options[0]
    sampler = bar.radio("z from", options, index=options.index(handed) if handed in options else 0,
                        format_func=lambda name: get_sampler(name).words, key="sampler",
                        help="N(0, I), or the Gaussian mixture fitted to each model's training codes; selected at "
                             "first: the one whose samples ranked the trials, which vaetune sample draws from by "
                             "default; one seed gives one draw for every trial")
    temperature = bar.slider("temperature (scale of z)", 0.1, 2.0, 1.0, 0.05, key="temperature")
    n = bar.slider("images", 1, MAX_SAMPLES, 16, key="n")
    st.session_state.setdefault("seed", 0)  # "New samples" sets it too
    seed = bar.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="seed")
    bar.button("New samples", on_click=_new_seed, key="new_samples")
    label = None
    conditional = [m for m in loaded if m.model.num_classes]
    if conditional:
        names = conditional[0].classes()
        label = bar.selectbox("class", range(len(names)), format_func=lambda i: f"{i}: {names[i]}", key="label")
    return {"sampler": sampler, "temperature": float(temperature), "n": int(n), "seed": int(seed),
            "label": label}


def main() -> None:
    st.set_page_config(page_title="vaetune gallery", layout="wide")
    begin()
    target = os.environ.get(TARGET_ENV, "")
    with shielded(target=target):
        if not target:
            st.error(f"no search or checkpoint to show: start the page with `vaetune gallery RESULTS|CHECKPOINT` "
                     f"(it sets {TARGET_ENV})")
            return
        quiet_download_failures()
        gone = moved_away(target)
        if gone is not None:
            st.error(gone)
            return
        gallery = gallery_at(target)
        st.title(f"vaetune gallery · {gallery.title}")
        chosen = pick_trials(gallery)
        if not chosen:
            st.info("Choose a trial above.")
            return
        loaded = [model_at(e.checkpoint) for e in chosen]
        settings = sampling(loaded)
        section = st.radio("Show", list(SECTIONS), horizontal=True, key="section", label_visibility="collapsed")
        with shielded(target=target):
            SECTIONS[section](gallery, chosen, loaded, settings)
        device = loaded[0].device
        st.caption(f"drawn in {elapsed():.2f} s on {device}")


main()
