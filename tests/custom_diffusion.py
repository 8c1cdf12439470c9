"""A user-defined diffusion, registered the way the Diffusion docstring says."""

import keras

from keras_nsde import diffusions


@keras.saving.register_keras_serializable(package="keras_nsde_tests")
class TanhDiffusion(diffusions.Diffusion):
    """G = scale * tanh(h), with a learnable scale."""

    def __init__(self, initial_scale=0.2, **kwargs):
        super().__init__(**kwargs)
        self.initial_scale = initial_scale

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale", shape=(), initializer=keras.initializers.Constant(self.initial_scale)
        )
        self.built = True

    def call(self, h, t, f):
        return keras.ops.cast(self.scale, h.dtype) * keras.ops.tanh(h)

    def get_config(self):
        return {**super().get_config(), "initial_scale": self.initial_scale}
