"""Evaluation: test-time-noise ensembles."""

from keras_nsde.evaluation.ensemble import ensemble_predict, noise_at_inference

__all__ = ["ensemble_predict", "noise_at_inference"]
