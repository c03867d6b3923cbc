"""Storage and data on many nodes, without a cluster: checkpoint URIs for remote storage, a
trial's data on a node that lacks the source, and `vaetune cluster prepare`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vaetune.errors import UserError
from vaetune.results import experiment_path, results_dir_for, storage_uri
from vaetune.spec import DataConfig, load_space


@pytest.mark.parametrize(("storage", "path", "expected"), [
    # Ray returns paths inside the storage filesystem: S3 loses its scheme, which export needs
    ("s3://bucket/vaetune", "bucket/vaetune/x/checkpoint_000003", "s3://bucket/vaetune/x/checkpoint_000003"),
    ("gs://b/p", "b/p/t", "gs://b/p/t"),
    ("s3://bucket/vaetune", "s3://bucket/vaetune/t", "s3://bucket/vaetune/t"),
    ("file:///mnt/shared/results", "/mnt/shared/results/t", "/mnt/shared/results/t"),
    ("/mnt/efs/results", "/mnt/efs/results/t", "/mnt/efs/results/t"),
    ("s3://bucket/vaetune", None, ""),
])
def test_storage_uri(storage, path, expected):
    assert storage_uri(storage, path) == expected


def test_remote_storage_keeps_the_summary_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert experiment_path("s3://bucket/prefix/", "ygo") == "s3://bucket/prefix/ygo"
    assert results_dir_for("s3://bucket/prefix", "ygo") == tmp_path / "results" / "ygo"
    assert results_dir_for("/mnt/efs/results", "ygo") == Path("/mnt/efs/results/ygo")  # beside the experiment


def test_max_failures_default_retries_lost_nodes():
    from vaetune.spec import SearchConfig

    assert SearchConfig().max_failures >= 1


def test_trial_data_missing_on_its_node_says_why(tmp_path):
    from vaetune.search._trainable import _load_data_on_this_node

    cfg = DataConfig(source=str(tmp_path / "not-synced"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(UserError, match="must exist at the same path on every node"):
        _load_data_on_this_node(cfg)


def test_trial_data_decodes_on_a_node_without_the_cache(tmp_path):
    """A worker whose disk lacks the cache decodes from the source and fills its own cache."""
    from vaetune.search._trainable import _load_data_on_this_node

    cache = tmp_path / "node2" / "cache"  # does not exist yet on this "node"
    data = _load_data_on_this_node(DataConfig(source="builtin:sprites", image_size=16, count=64, cache_dir=str(cache)))
    assert len(data.images) == 64 and list(cache.glob("*.pt"))


@pytest.mark.slow
def test_prepare_node(tmp_path):
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump({"name": "s", "data": {"source": "builtin:sprites", "image_size": 16,
                                                           "count": 64, "cache_dir": str(tmp_path / "c")},
                                     "train": {"beta": {"loguniform": [0.1, 1]}}}))
    missing = tmp_path / "m.yaml"
    missing.write_text(yaml.safe_dump({"name": "m", "data": {"source": str(tmp_path / "data/ygo")},
                                       "train": {"beta": {"loguniform": [0.1, 1]}}}))
    out = subprocess.run([sys.executable, "-m", "vaetune.cli", "cluster", "prepare", str(space), str(missing)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("node ") and "vaetune " in lines[0] and "torch " in lines[0]
    assert lines[1].startswith("FID weights: ") and lines[1].endswith(".pth")
    assert "64 images of builtin:sprites cached" in lines[2]
    assert "m.yaml: skipped" in lines[3] and "does not exist" in lines[3]
    assert load_space(space).default_config().data.cache_dir == str(tmp_path / "c")
    assert list((tmp_path / "c").glob("*.pt"))
