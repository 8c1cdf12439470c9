"""A learned diagonal diffusion g(z) with one small network per dimension, as in torchsde's latent SDE example."""

import keras
from keras import ops

from keras_nsde import validation
from keras_nsde.models.torch_init import torch_uniform


@keras.saving.register_keras_serializable(package="keras_nsde")
class DiagonalDiffusionNet(keras.layers.Layer):
    """g_i(z) = floor + (1 - floor) sigmoid(a_i(z_i)), a_i = w2_i . softplus(w1_i z_i + b1_i) + b2_i.

    Dimension i's noise scale depends on z_i alone, through its own
    1 -> `hidden_units` -> 1 network (torchsde's `g_nets`, computed for all
    dimensions at once). The sigmoid bounds g in (floor, 1): g never reaches
    0, so the KL integrand |(f_q - f_p) / g|^2 / 2 of the latent SDE stays
    finite; a learned diffusion that collapses to zero is a known failure of
    latent SDEs.

    Initialisation as PyTorch's `nn.Linear` (torchsde's example): w1, b1
    ~ U(-1, 1) (fan-in 1), w2, b2 ~ U(-1/sqrt(H), 1/sqrt(H)).

    Maps `(..., d)` to `(..., d)`; `derivative(z)` is dg_i/dz_i (for Milstein).

    Args:
        hidden_units: H, the width of each dimension's network.
        floor: the smallest noise scale, in [0, 1).
    """

    def __init__(self, hidden_units=128, floor=1e-4, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = validation.integer("hidden_units", hidden_units, minimum=1)
        self.floor = validation.number("floor", floor, minimum=0.0, maximum=1.0, exclusive_maximum=True)

    def build(self, input_shape):
        dim = input_shape[-1]
        unit, output = torch_uniform(1), torch_uniform(self.hidden_units)
        shape = (dim, self.hidden_units)
        self.w1 = self.add_weight(name="w1", shape=shape, initializer=unit)
        self.b1 = self.add_weight(name="b1", shape=shape, initializer=unit)
        self.w2 = self.add_weight(name="w2", shape=shape, initializer=output)
        self.b2 = self.add_weight(name="b2", shape=(dim,), initializer=output)

    def _preactivations(self, z):
        """(a(z) of shape (..., d), w1 z + b1 of shape (..., d, H))."""
        inner = ops.expand_dims(z, -1) * self.w1 + self.b1
        return ops.sum(ops.softplus(inner) * self.w2, axis=-1) + self.b2, inner

    def call(self, z):
        a, _ = self._preactivations(z)
        return self.floor + (1.0 - self.floor) * ops.sigmoid(a)

    def derivative(self, z):
        """dg_i/dz_i = (1 - floor) s (1 - s) sum_h w2_ih sigmoid(w1_ih z_i + b1_ih) w1_ih, s = sigmoid(a_i)."""
        a, inner = self._preactivations(z)
        s = ops.sigmoid(a)
        da = ops.sum(self.w2 * ops.sigmoid(inner) * self.w1, axis=-1)
        return (1.0 - self.floor) * s * (1.0 - s) * da

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units, "floor": self.floor}
