"""Random-number state of a training run, saved in checkpoints so a resumed run is bit-identical.

Three streams: torch's global generator (weights' init, the reparameterisation noise,
augmentation), the shuffle generator that orders each epoch's batches, and CUDA's generators
when a GPU is visible.
"""

from __future__ import annotations


def rng_state(shuffle_gen) -> dict:
    """The state of every stream, as tensors (loadable with `torch.load(weights_only=True)`)."""
    import torch

    state = {"torch": torch.get_rng_state(), "shuffle": shuffle_gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, shuffle_gen) -> None:
    """Restore what `rng_state` saved (CUDA's streams only where a GPU is visible)."""
    import torch

    torch.set_rng_state(state["torch"])
    shuffle_gen.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
