"""The paper's classifiers."""

from keras_nsde.models.paper_classifier import DEFAULT_SIGMA, paper_classifier

__all__ = ["DEFAULT_SIGMA", "paper_classifier"]
