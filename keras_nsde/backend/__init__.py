"""Backend-specific operations, one module per Keras backend.

    from keras_nsde import backend
    h_N = backend.get().integrate(step, h0, num_steps)

`keras_nsde.backend.tensorflow`, `.jax` and `.torch` are the only core modules
that import tensorflow, jax or torch. Each provides the same functions:

    integrate(step, state0, num_steps, return_trajectory, output)   the time loop
    seed(values), fold_in(seed, n), uniform(shape, seed, dtype)      stateless sampling
    replica_seed(seed)              a per-replica seed under data-parallel training
    random_shape(x)                 x's shape as the samplers take it
    executing_eagerly(x)            whether x is a concrete value (not traced)
    integrate_pathwise(...), integrate_reversible(...)              the custom gradients
    group_norm(...), same_conv2d(...)                               the drift's kernels

Functions written once in `keras.ops` live in `generic` and are shared.
"""

import importlib

import keras


def get(name=None):
    """The module of backend `name` (default: Keras' current backend)."""
    name = name or keras.backend.backend()
    if name not in ("tensorflow", "jax", "torch"):
        raise ValueError(
            f"keras_nsde runs on the tensorflow, jax and torch backends. Received: backend={name!r}"
        )
    return importlib.import_module(f"keras_nsde.backend.{name}")


def unsupported(feature, backend=None):
    """A ValueError for a feature the current backend does not have."""
    backend = backend or keras.backend.backend()
    return ValueError(f"{feature} is not available on the {backend} backend. Received: backend={backend!r}")
