"""Calling a built layer's `call` without Keras' per-call machinery, where that machinery would change nothing.

`Layer.__call__` converts the inputs to the compute dtype, checks the input
spec, builds, resolves `training` and masks from the call context, opens a
name scope and an autocast scope, and adds activity-regularization losses;
on PyTorch it also runs through `nn.Module.__call__`. A solver calls the
drift and the diffusion (and the drift its sub-layers) at every step, so on
the eager PyTorch backend this bookkeeping is paid N times per layer per
training step. For a built layer with one dtype (no mixed policy), inputs
already in that dtype and no activity regularizer, none of it changes the
result, and `call` runs directly; otherwise the layer is called as usual.
A plain `keras.layers.Dense` (with a bias, not quantized, no LoRA) runs its
`call` as `keras_nsde.ops.affine` and its activation: one `torch.addmm` on
PyTorch.
"""

import keras

from keras_nsde import ops as nsde_ops


def can_call_directly(layer, x):
    """Whether `layer.call(x, ...)` gives what `layer(x, ...)` would: built, one dtype, x in it, no activity loss."""
    return (
        layer.built
        and layer.compute_dtype == layer.variable_dtype
        and getattr(layer, "activity_regularizer", None) is None
        and keras.backend.standardize_dtype(x.dtype) == layer.compute_dtype
    )


def call_layer(layer, x, *args, **kwargs):
    """`layer(x, *args, **kwargs)`, through `layer.call` when `can_call_directly(layer, x)`."""
    if can_call_directly(layer, x):
        if is_plain_dense(layer) and not args and not kwargs:
            return layer.activation(nsde_ops.affine(x, layer.kernel, layer.bias))
        return layer.call(x, *args, **kwargs)
    return layer(x, *args, **kwargs)


def is_plain_dense(layer):
    """Whether `layer.call(x)` is activation(x @ kernel + bias): a Dense layer itself, with a bias, no quantization or LoRA."""
    return (
        type(layer) is keras.layers.Dense
        and layer.use_bias
        and getattr(layer, "quantization_mode", None) is None
        and not getattr(layer, "lora_enabled", False)
    )


def call_as_layer(layer, x, *args, **kwargs):
    """`layer(x, *args, **kwargs)` through Keras' `__call__`, always (for layers whose `call` takes training or mask)."""
    return layer(x, *args, **kwargs)
