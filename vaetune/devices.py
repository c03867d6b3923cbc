"""Which torch device a setting names: the one rule for `train.device` and `--device`."""

from __future__ import annotations

from vaetune.errors import UserError


def resolve_device(name, *, what: str = "train.device") -> str:
    """"auto" or None -> "cuda" when a CUDA device is visible, else "cpu"; "cuda"/"cuda:N" only
    where CUDA is visible (a UserError naming `what` otherwise); anything else as given."""
    import torch

    name = "auto" if name is None else str(name)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{what}: got {name!r} but no CUDA device is visible; use auto or cpu")
    return name
