"""PyTorch's default initialisation, for models that follow a PyTorch reference (torchsde's latent SDE example)."""

import math

import keras


def torch_uniform(fan_in):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for nn.Linear and nn.GRU weights and biases."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def torch_dense(units, inputs, dtype, activation=None, name=None):
    """A Dense layer initialised as PyTorch's nn.Linear(inputs, units)."""
    init = torch_uniform(inputs)
    return keras.layers.Dense(
        units, activation=activation, kernel_initializer=init, bias_initializer=init, dtype=dtype, name=name
    )
