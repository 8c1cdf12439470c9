"""Dropout-style noise, paper Eq. (8): G = sqrt((1 - p) / p) * f."""

import math

import keras

from keras_nsde import validation
from keras_nsde.diffusions.base import ScaledDiffusion


@keras.saving.register_keras_serializable(package="keras_nsde")
class Dropout(ScaledDiffusion):
    """G = sigma * f(h, t; w): the continuous limit of dropout in a residual block.

    A residual step h + f * gamma / p with gamma ~ Bernoulli(p) has the same
    mean and variance as h + f dt + sigma f dB with sigma = sqrt((1 - p) / p)
    (paper Eqs. 6-8). G depends on the drift, hence on the drift's weights.

    Args:
        sigma: noise level, >= 0 (default 0.1). See `from_rate`.
    """

    @classmethod
    def from_rate(cls, p, **kwargs):
        """Dropout noise with sigma = sqrt((1 - p) / p), Eq. (8).

        Args:
            p: the paper's keep probability (gamma ~ Bernoulli(p)), in (0, 1).
                Keras' `layers.Dropout(rate)` uses the drop probability:
                p = 1 - rate.
        """
        p = validation.number("p", p, 0.0, 1.0, exclusive_minimum=True, exclusive_maximum=True)
        return cls(sigma=math.sqrt((1.0 - p) / p), **kwargs)

    def call(self, h, t, f):
        return self.sigma * f

    # derivative(): none in closed form (f couples the components); Milstein
    # uses its derivative-free form.
