"""Multiplicative noise, paper Eq. (4): G = Sigma(h, t) = sigma * h."""

import keras

from keras_nsde.diffusions.base import ScaledDiffusion


@keras.saving.register_keras_serializable(package="keras_nsde")
class Multiplicative(ScaledDiffusion):
    """G = sigma * h (elementwise): dh = f dt + sigma h dB.

    Corollary 3.2.1: with f L-Lipschitz, sigma^2 > 2L makes perturbations of
    h decay exponentially almost surely.

    Args:
        sigma: noise level, >= 0 (default 0.1).
    """

    def call(self, h, t, f):
        return self.sigma * h

    def derivative(self, h, t, f):
        return self.sigma * keras.ops.ones_like(h)
