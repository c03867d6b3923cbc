"""The model stage's sections: `model` (what every architecture takes; each architecture's own
config subclasses ModelConfig in its file) and `train` (how a model is trained: the objective and
its schedules, the optimizer, the fitted prior, the loop's cadence). The spec (vaetune.spec)
assembles them with the other sections into a `Config`; nothing here reads the spec.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from vaetune.models._losses import ReconLoss
from vaetune.models._objective_registry import OBJECTIVES
from vaetune.sections import Section, one_of

__all__ = ["DEFAULT_ARCH", "ModelConfig", "PriorCovariance", "TrainConfig"]


class ModelConfig(Section):
    """What every architecture takes. An architecture's own config (in its file in vaetune.models)
    subclasses this with its options and its image-size rule; `arch` picks which one validates the
    section, e.g. ``model: {arch: conv, latent_dim: 16, width: 32}``."""

    arch: str = "conv"  # an architecture registered in vaetune.models (one file each)
    latent_dim: int = Field(16, ge=1, le=4096)  # dimensions of z
    conditional: bool = False  # condition encoder and decoder on the class label (CVAE)
    logvar_clamp: float = Field(10.0, gt=0)  # logvar is clamped to [-c, c] for stability

    def check_image_size(self, size: int) -> None:
        """Raise ValueError, saying which sizes fit, if square images of side `size` do not fit
        this architecture. Every size fits unless an architecture says otherwise."""


DEFAULT_ARCH: str = ModelConfig.model_fields["arch"].default


# scikit-learn's covariance types of a Gaussian mixture (vaetune.models)
PriorCovariance = Literal["full", "diag", "spherical", "tied"]


class TrainConfig(Section):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: linear warm-up then cosine decay
    lr_warmup_epochs: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)  # AdamW's (decoupled)
    grad_clip: float | None = Field(None, gt=0)  # max global gradient norm; None disables
    recon_loss: ReconLoss = "mse"  # calibrated: σ-VAE, one decoder variance at its optimum each batch
    recon_reduction: Literal["sum", "mean"] = "sum"  # sum over pixels per image, or mean over pixels
    recon_weight: float = Field(1.0, gt=0)  # elbo: loss = recon_weight * recon + beta * KL
    # the loss, registered in vaetune.models: elbo (recon + beta * KL) | capacity (recon + gamma * |KL - C|)
    objective: str = "elbo"
    beta: float = Field(1.0, ge=0)  # KL weight (elbo)
    beta_schedule: Literal["constant", "linear", "cyclical"] = "constant"  # how the KL weight moves
    warmup_epochs: float = Field(0.0, ge=0)  # linear: epochs for beta to ramp 0 -> beta
    cycles: int = Field(4, ge=1)  # cyclical (Fu et al. 2019): number of cycles M over training
    cycle_ratio: float = Field(0.5, gt=0, le=1)  # cyclical: fraction R of a cycle spent ramping
    capacity_max: float = Field(25.0, ge=0)  # capacity (Burgess et al. 2018): C_max in nats
    capacity_epochs: float = Field(10.0, gt=0)  # capacity: epochs for C to reach C_max
    capacity_gamma: float = Field(100.0, gt=0)  # capacity: gamma in gamma * |KL - C|
    free_bits: float = Field(0.0, ge=0)  # elbo: nats per latent dimension not penalised
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["off", "bf16"] = "off"  # bf16: autocast on CUDA (ignored on CPU)
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads per trial; None: torch's
    checkpoint_every: int = Field(1, ge=1)  # epochs between checkpoints (and always at the end)
    grid_every: int = Field(1, ge=1)  # epochs between reconstruction/sample grid PNGs
    grid_size: int = Field(8, ge=1, le=32)  # images per grid row; grids are grid_size x grid_size
    fid_every: int = Field(0, ge=0)  # epochs between FID/KID evaluations; 0 disables
    fid_samples: int = Field(1000, ge=2)  # generated and real images used for FID/KID
    fid_reference: Literal["val", "train", "test"] = "val"  # split that the real statistics use
    # gmm: at each FID evaluation and checkpoint, a Gaussian mixture fitted to the training set's
    # posterior means (Ghosh et al. 2020); eval/*_gmm measure N samples from it, the checkpoint
    # keeps it and `vaetune sample` draws from it. none: z ~ N(0, I) only
    prior: Literal["gmm", "none"] = "gmm"
    prior_components: int = Field(10, ge=1)  # the mixture's components (Ghosh et al. use 10)
    # diag fits 5,000 means in well under a second on a CPU; full has D² parameters per component
    prior_covariance: PriorCovariance = "diag"
    seed: int = 0

    @property
    def fits_prior(self) -> bool:
        """Whether a latent prior is fitted (and its eval/*_gmm metrics measured with FID)."""
        return self.prior != "none"

    @field_validator("objective")
    @classmethod
    def _registered_objective(cls, name: str) -> str:
        if name not in OBJECTIVES:
            raise ValueError(f"input should be {one_of(OBJECTIVES)} "
                             "(the objectives registered in vaetune.models)")
        return name

    @field_validator("beta_schedule", mode="before")
    @classmethod
    def _capacity_is_an_objective(cls, name: Any) -> Any:
        # beta_schedule: capacity switched the loss before train.objective existed; translating it
        # silently would keep a searched {choice: [linear, capacity]} mixing schedules and losses
        if name == "capacity":
            raise ValueError("capacity is an objective, not a schedule of the KL weight: set "
                             "train.objective: capacity (β schedules: constant, linear, cyclical)")
        return name
