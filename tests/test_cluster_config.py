"""cluster.yaml passes the Ray cluster launcher's own checks, as `ray up` runs them, offline.

`ray up` fills the file out with the AWS provider's defaults (`prepare_config`) and validates
the result against Ray's JSON schema (`validate_config`); only then does it talk to AWS.
The remaining checks pin the promises docs/cluster.md makes about the file: nothing but SSH open to
the internet, MLflow and the dashboard on 127.0.0.1, one GPU per worker, a spot worker type,
and the same vaetune installed and prepared on every node.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


@pytest.fixture(scope="module")
def prepared(raw) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def test_ray_validates_cluster_yaml(prepared):
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] == "head"
    assert set(prepared["available_node_types"]) == {"head", "gpu", "gpu_spot"}


def test_validation_catches_a_broken_file(raw):
    """The check above is a real one: Ray's schema rejects a misspelt key."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(raw)
    broken["available_node_types"]["gpu"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))


def test_workers_have_one_gpu_and_autoscale(prepared):
    types = prepared["available_node_types"]
    assert types["head"]["resources"] == {"CPU": 0}  # no trials on the head
    for name in ("gpu", "gpu_spot"):
        assert types[name]["resources"]["GPU"] == 1
        assert types[name]["min_workers"] == 0 < types[name]["max_workers"] <= prepared["max_workers"]
    assert types["gpu_spot"]["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert "InstanceMarketOptions" not in types["gpu"]["node_config"]


def test_only_ssh_is_open(prepared):
    # Ray adds SSH and intra-cluster rules itself; anything listed here would be opened too
    assert prepared["provider"]["security_group"]["IpPermissions"] == []
    head_start = "\n".join(prepared["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start
    assert "mlflow server" in head_start and "--host 127.0.0.1" in head_start


def test_every_node_installs_and_prepares_vaetune(prepared):
    assert prepared["file_mounts"] == {"~/vaetune": "."}
    assert (ROOT / "pyproject.toml").exists()  # `.` is the repository: ray up runs from its root
    setup = "\n".join(prepared["setup_commands"])
    assert 'pip install -q -e "$HOME/vaetune[cluster]"' in setup
    assert "vaetune cluster prepare" in setup  # FID weights on every node
    head = "\n".join(prepared["head_setup_commands"])
    assert "MLFLOW_TRACKING_URI=http://127.0.0.1:5000" in head
    assert head.startswith(setup)  # Ray runs the common setup first on the head as well
    for excluded in (".venv", "results", "mlruns", "mlflow.db", ".vaetune_cache"):
        assert excluded in prepared["rsync_exclude"]


def test_cluster_extra_has_what_the_head_needs():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = " ".join(project["optional-dependencies"]["cluster"])
    assert "ray[default]" in extra and "boto3" in extra  # autoscaler + dashboard; MLflow's S3 artifacts
