"""What every part of the gallery's page shares: the cached models and images, a picture with its
PNG download, and the shield that turns a mistake into a message in the page.

Models load once per server process (`st.cache_resource`, keyed by their checkpoint) and decode
on their own device; the images of a data config load once as well. Each picture the page shows
is also kept, as the PNG its download button offers, in `st.session_state[SHOWN]` under its name:
what a test reads back (Streamlit's test harness sees an image only as a URL).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from vaetune.errors import UserError
from vaetune.gallery._models import Images, Loaded, data_images, data_key, load
from vaetune.gallery._pictures import active_dims, grid, zoomed
from vaetune.gallery._server import SHOWN
from vaetune.gallery._target import Gallery, open_gallery

STARTED = "gallery_started"  # session state: when this run of the page began (perf_counter)


@st.cache_resource(show_spinner="reading the results")
def gallery_at(target: str) -> Gallery:
    return open_gallery(target)


@st.cache_resource(show_spinner="loading the model", max_entries=32)
def model_at(checkpoint: str) -> Loaded:
    return load(checkpoint)


@st.cache_resource(show_spinner="reading the model's images", max_entries=4)
def _images(key: str, _config) -> Images:
    return data_images(_config)


def images_of(loaded: Loaded) -> Images:
    """The validation and training images of a model's data, read once per data config."""
    return _images(data_key(loaded.config), loaded.config)


@st.cache_resource(show_spinner=False, max_entries=32)
def _dims(checkpoint: str, _loaded: Loaded, _images: Images):
    return active_dims(_loaded, _images)


def dims_of(loaded: Loaded) -> tuple[list[int], object]:
    """A model's latent dimensions by KL over its validation images (largest first), and the KL."""
    return _dims(loaded.path, loaded, images_of(loaded))


def begin() -> None:
    st.session_state[SHOWN] = {}
    st.session_state[STARTED] = time.perf_counter()


def show(where, name: str, images, caption: str, ncols: int | None = None) -> bytes:
    """A grid of images (N, C, H, W) in `where` (a column or the page), sharp and at least
    DISPLAY_WIDTH wide, with a download button of its PNG at the images' own size."""
    png = grid(images, ncols)
    st.session_state[SHOWN][name] = png
    where.image(zoomed(png), caption=caption, output_format="PNG")  # never re-encoded as JPEG
    where.download_button("PNG", png, file_name=f"{name}.png", mime="image/png", key=f"png_{name}")
    return png


@contextlib.contextmanager
def shielded(where=st, target: str = ""):
    """Run a part of the page; a user's mistake becomes its one line in the page, and anything
    else one line naming the crash log that holds its traceback: never a traceback in the page
    or the terminal."""
    from vaetune.errors import crash_log, one_line

    try:
        yield
    except UserError as err:
        where.error(one_line(err))
    except Exception as exc:  # noqa: BLE001 - a bug: said in one line, its traceback in a file
        path = crash_log(["gallery", target])
        where.error(f"internal error (a bug in vaetune): {type(exc).__name__}: {one_line(exc)[:300]}; the full "
                    f"traceback is in {path}")


def moved_away(target: str) -> str | None:
    """The page's one line when what it shows is no longer where the gallery was started on: the models it
    loaded stay in memory, but checkpoints, exports and images read from there would fail."""
    if Path(target).exists():
        return None
    return (f"{target}: no longer there (moved or removed since the gallery started); start `vaetune gallery` "
            "again on the folder where it is now")


class _DownloadFailures(logging.Filter):
    """A download the page offers is made when it is clicked, outside the page's run: Streamlit logs its
    failure with a traceback. A user's mistake there (a UserError: the results folder moved) is said in
    the page at its next run (`moved_away`, the export section), so its record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(getattr(exc, "__cause__", None), UserError)


DOWNLOAD_FAILURES = _DownloadFailures()
DEFERRED_LOGGER = "streamlit.runtime.backend_operation_handler"  # logs a failed deferred download


def quiet_download_failures() -> None:
    logging.getLogger(DEFERRED_LOGGER).addFilter(DOWNLOAD_FAILURES)  # once: the same filter is not added twice


def as_user_error(make: Callable[[], bytes]) -> Callable[[], bytes]:
    """A download's bytes, a file the system refuses (gone, unreadable) turned into the UserError naming it."""
    def call() -> bytes:
        try:
            return make()
        except OSError as exc:
            raise UserError(f"{exc.filename or 'a file'}: {exc.strerror or exc}") from None
    return call


def elapsed() -> float:
    return time.perf_counter() - st.session_state.get(STARTED, time.perf_counter())


def label_of(loaded: Loaded, chosen: int | None) -> int | None:
    """The class a model decodes: the chosen one for a conditional model, None otherwise."""
    if not loaded.model.num_classes:
        return None
    if chosen is not None and chosen >= loaded.model.num_classes:
        raise UserError(f"class: got {chosen}; this model has classes 0..{loaded.model.num_classes - 1}")
    return chosen
