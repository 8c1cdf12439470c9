"""Backend primitives, one module per Keras backend, each exporting the same names.

    from keras_nsde import backend
    final, _ = backend.get().loop(body, carry, num_steps)

`keras_nsde.backend.tensorflow`, `.jax` and `.torch` are the only modules of
the package that import tensorflow, jax or torch. They hold primitives only
(the algorithms built on them, the solvers and gradient methods, are written
once in `keras.ops` above them) and import nothing from `keras_nsde.solvers`,
`.gradients` or `.layers`. What is the same on every backend is written once
in `generic` and re-exported. The primitives (`PRIMITIVES`):

    loop(body, carry, num_steps, record=None, lookahead=False, unroll=None, stack=True)
                                    the time loop: carry_{n+1} = body(carry_n, n), optionally stacking record(carry_n)
                                    (stack=False: `Records`, read back one at a time without a stacked copy)
    custom_vjp(forward, backward, variables)
                                    a function of h0 with a hand-written backward pass (the weights it reads included)
    vjp(function, x, weights, cotangent)
                                    (function(x), cotangent . d function/dx, cotangent . d function/dw) inside a backward pass
    weight_jvp(function, variables, direction), jacobian_products(function, x, v)
                                    forward-mode products (pathwise_jvp, the Lipschitz estimate)
    seed(values), fold_in(seed, n), uniform(shape, seed, dtype), normal(shape, seed, dtype)
                                    stateless sampling: a step's numbers are a function of (seed, n) alone
    replica_seed(seed)              the replica id folded into a seed under data-parallel training
    random_shape(x), size(shape)    shapes as the samplers take them
    executing_eagerly(x), check_dtype(dtype)
    compile_function(function, input_shape, dtype, jit_compile, variables), compile_stateful(function, variables),
    trace(function)                 compilation: a tf.function, a jax.jit with the variables passed as state, or eager
    input_gradient(loss_fn, x)      d loss / dx, the attacks' gradient hook
    dormand_prince(drift_fn, h0, t0, t1, rtol, atol, times, variables)
                                    the backend's adaptive ODE solver with its adjoint gradient (TFP, diffrax, torchdiffeq)
    accelerated(op, x)              a faster drop-in implementation of a keras.ops op ("group_norm",
                                    "same_conv2d", "affine") for x where the backend has one (TensorFlow's CPU
                                    kernels, PyTorch's addmm), else None
"""

import importlib

import keras

BACKENDS = ("tensorflow", "jax", "torch")

PRIMITIVES = (
    "accelerated",
    "check_dtype",
    "compile_function",
    "compile_stateful",
    "dormand_prince",
    "custom_vjp",
    "executing_eagerly",
    "fold_in",
    "input_gradient",
    "jacobian_products",
    "loop",
    "normal",
    "random_shape",
    "replica_seed",
    "seed",
    "size",
    "trace",
    "uniform",
    "vjp",
    "weight_jvp",
)


def get(name=None):
    """The module of backend `name` (default: Keras' current backend)."""
    name = name or keras.backend.backend()
    if name not in BACKENDS:
        raise ValueError(f"keras_nsde runs on the tensorflow, jax and torch backends. Received: backend={name!r}")
    return importlib.import_module(f"keras_nsde.backend.{name}")


def unsupported(feature, backend=None):
    """A ValueError for a feature the current backend does not have."""
    backend = backend or keras.backend.backend()
    return ValueError(f"{feature} is not available on the {backend} backend. Received: backend={backend!r}")
