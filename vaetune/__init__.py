"""vaetune: hyperparameter search for image variational autoencoders."""

__version__ = "0.1.0"
