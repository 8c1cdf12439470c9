"""The paper's classifiers, and a latent SDE for time series."""

from keras_nsde.models.diagonal_diffusion_net import DiagonalDiffusionNet
from keras_nsde.models.latent_sde import LatentSDE
from keras_nsde.models.paper_classifier import DEFAULT_SIGMA, paper_classifier

__all__ = ["DEFAULT_SIGMA", "DiagonalDiffusionNet", "LatentSDE", "paper_classifier"]
