"""`vaetune gallery`: play with what a search made, in the browser, trials side by side.

A Streamlit page (`_app.py`, served by `vaetune gallery` on 127.0.0.1) over a search's or sweep's
trials (ranked by the search metric, their values at the report's main table epoch) or one
checkpoint: samples decoded from the same fixed z for every compared trial (the fitted latent
prior or N(0, I), a temperature, a seed, a class), reconstructions of the same validation images
and of the user's own, a latent explorer (sliders for the most active dimensions by KL, a
traversal strip), interpolation between two images (lerp and slerp, a GIF), any kept checkpoint
of a trial, a sample's nearest training images, and the export of a trial's checkpoint.

The pictures are computed outside Streamlit (`_pictures`), by the functions of vaetune.viz and
vaetune.checkpoint that the commands use, so the gallery's samples of a seed are `vaetune sample
--seed`'s, and tests check them without a browser.
"""

from __future__ import annotations

from vaetune.gallery._models import Images, Loaded, data_images, data_key, load
from vaetune.gallery._pictures import (
    EXPLORER_DIMS,
    MAX_SAMPLES,
    active_dims,
    code_of,
    codes,
    decode,
    explore,
    grid,
    interpolate,
    labels_for,
    nearest_training,
    read_upload,
    reconstruct,
    samples,
    strip,
    validation_distance,
    zoomed,
)
from vaetune.gallery._server import APP, SHOWN, TARGET_ENV, server_command
from vaetune.gallery._target import Entry, Gallery, export_bytes, kept_checkpoints, open_gallery

__all__ = [
    "APP", "EXPLORER_DIMS", "Entry", "Gallery", "Images", "Loaded", "MAX_SAMPLES", "SHOWN", "TARGET_ENV",
    "active_dims", "code_of", "codes", "data_images", "data_key", "decode", "explore", "export_bytes", "grid",
    "interpolate", "kept_checkpoints", "labels_for", "load", "nearest_training", "open_gallery", "read_upload",
    "reconstruct", "samples", "server_command", "strip", "validation_distance", "zoomed",
]
