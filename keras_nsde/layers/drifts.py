"""Default drifts f(h, t; w): the paper's conv drift and an MLP for vectors."""

import keras
from keras import ops

from keras_nsde import validation
from keras_nsde.layers.direct_call import call_layer
from keras_nsde.layers.group_norm import GroupNorm
from keras_nsde.layers.time_conv import TimeConv2D

GROUP_NORM_EPSILON = 1e-5  # PyTorch's GroupNorm default, as in the authors' code


@keras.saving.register_keras_serializable(package="keras_nsde")
class ConvDrift(keras.layers.Layer):
    """The paper's drift on image states (docs/paper-setup.md):

        GN -> ReLU -> TimeConv -> GN -> ReLU -> TimeConv -> GN -> ReLU -> TimeConv -> GN

    with GroupNorm of min(32, C) groups and 3x3 'same' time-convolutions
    (C + 1 -> C channels). Maps `(batch, H, W, C)` to the same shape.

    Args:
        filters: C, the state's channels.
        num_convs: number of GN-ReLU-TimeConv units (paper: 3).
        groups: GroupNorm groups, capped at `filters` (paper: 32).
    """

    def __init__(self, filters, num_convs=3, groups=32, **kwargs):
        super().__init__(**kwargs)
        self.filters = validation.integer("filters", filters, minimum=1)
        self.num_convs = num_convs = validation.integer("num_convs", num_convs, minimum=1)
        self.groups = groups = validation.integer("groups", groups, minimum=1)
        norm_groups = min(groups, filters)
        self.norms = [
            GroupNorm(
                norm_groups,
                epsilon=GROUP_NORM_EPSILON,
                relu=i < num_convs,  # GN -> ReLU fused; the last GN has no ReLU
                dtype=self.dtype_policy,
                name=f"norm_{i}",
            )
            for i in range(num_convs + 1)
        ]
        self.convs = [
            TimeConv2D(filters, dtype=self.dtype_policy, name=f"time_conv_{i}")
            for i in range(num_convs)
        ]

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"ConvDrift maps a state of C channels to C channels: filters must equal the input's channels "
                f"({input_shape[-1]}). Received: filters={self.filters}"
            )
        for layer in self.norms + self.convs:
            if not layer.built:
                layer.build(input_shape)
        self.built = True

    def call(self, h, t):
        for norm, conv in zip(self.norms, self.convs):
            h = call_layer(conv, call_layer(norm, h), t)  # norm includes the ReLU
        return call_layer(self.norms[-1], h)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "num_convs": self.num_convs,
            "groups": self.groups,
        }


@keras.saving.register_keras_serializable(package="keras_nsde")
class MLPDrift(keras.layers.Layer):
    """An MLP drift for vector states that sees t at every layer:

        x = act(W_k [x, t] + b_k) for each hidden layer, f = W_out [x, t] + b_out.

    Maps `(batch, units)` to `(batch, units)`.

    Args:
        units: the state's dimension.
        hidden_units: width of each hidden layer.
        hidden_layers: number of hidden layers.
        activation: hidden activation.
    """

    def __init__(self, units, hidden_units=64, hidden_layers=2, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units = validation.integer("units", units, minimum=1)
        self.hidden_units = hidden_units = validation.integer("hidden_units", hidden_units, minimum=1)
        self.hidden_layers = hidden_layers = validation.integer("hidden_layers", hidden_layers, minimum=0)
        self.activation = activation
        self.hidden = [
            keras.layers.Dense(
                hidden_units, activation=activation, dtype=self.dtype_policy, name=f"hidden_{i}"
            )
            for i in range(hidden_layers)
        ]
        self.out = keras.layers.Dense(units, dtype=self.dtype_policy, name="out")

    def build(self, input_shape):
        width = input_shape[-1]
        for layer in self.hidden:
            if not layer.built:
                layer.build((None, width + 1))
            width = self.hidden_units
        if not self.out.built:
            self.out.build((None, width + 1))
        self.built = True

    def call(self, h, t):
        time_column = ops.ones_like(h[:, :1]) * ops.cast(t, h.dtype)
        x = h
        for layer in self.hidden:
            x = call_layer(layer, ops.concatenate([x, time_column], axis=-1))
        return call_layer(self.out, ops.concatenate([x, time_column], axis=-1))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "hidden_units": self.hidden_units,
            "hidden_layers": self.hidden_layers,
            "activation": self.activation,
        }


def default_drift(input_shape, dtype=None, name="drift"):
    """The drift `SDEBlock` uses when none is given, chosen by the state's rank."""
    if len(input_shape) == 4:
        return ConvDrift(input_shape[-1], dtype=dtype, name=name)
    if len(input_shape) == 2:
        return MLPDrift(input_shape[-1], dtype=dtype, name=name)
    raise ValueError(
        "With drift=None, SDEBlock needs a 4-D (batch, H, W, C) or 2-D (batch, dim) "
        f"input; pass your own drift layer for other ranks. Received: input_shape={tuple(input_shape)}"
    )
