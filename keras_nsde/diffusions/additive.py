"""Additive noise, paper Eq. (4): G = Sigma(t) = sigma * I."""

import keras

from keras_nsde import validation
from keras_nsde.diffusions.base import ScaledDiffusion


@keras.saving.register_keras_serializable(package="keras_nsde")
class Additive(ScaledDiffusion):
    """G = sigma, independent of h: dh = f dt + sigma dB.

    Args:
        sigma: noise level, >= 0 (default 0.1).
        learnable: if True, sigma becomes one trainable weight per channel
            (last axis of h), initialised to `sigma` and kept >= 0.
    """

    def __init__(self, sigma=None, learnable=False, **kwargs):
        super().__init__(sigma=sigma, **kwargs)
        self.learnable = validation.boolean("learnable", learnable)

    def build(self, input_shape):
        if self.learnable:
            self.channel_sigma = self.add_weight(
                name="sigma",
                shape=(input_shape[-1],),
                initializer=keras.initializers.Constant(self.sigma),
                constraint=keras.constraints.NonNeg(),
            )
        self.built = True

    def call(self, h, t, f):
        sigma = keras.ops.cast(self.channel_sigma, h.dtype) if self.learnable else self.sigma
        return keras.ops.ones_like(h) * sigma

    def derivative(self, h, t, f):
        return keras.ops.zeros_like(h)

    def get_config(self):
        return {**super().get_config(), "learnable": self.learnable}
