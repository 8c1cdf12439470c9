"""G = 0: the Neural ODE."""

import keras

from keras_nsde.diffusions.base import Diffusion


@keras.saving.register_keras_serializable(package="keras_nsde")
class NoDiffusion(Diffusion):
    """G = 0, so dh = f dt: the block is a Neural ODE and samples no noise."""

    is_noisy = False

    def call(self, h, t, f):
        return keras.ops.zeros_like(h)

    def derivative(self, h, t, f):
        return keras.ops.zeros_like(h)
