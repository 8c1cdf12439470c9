"""CPU kernels, compiled on first use with the system C++ compiler.

- `group_norm_kernels.cc`: one-pass kernels for GroupNorm(+ReLU) on float32
  images (`group_norm_ops`). TensorFlow runs GroupNorm as a chain of
  elementwise kernels, each reading and writing the whole state; these do
  the same work in one pass over it.
- `winograd_conv_kernels.cc`: 3x3 'same' convolutions and their kernel
  gradient by Winograd's F(4x4, 3x3) algorithm (`conv_ops`), 4x fewer
  multiplications than the direct convolution oneDNN runs.
- `philox_uniform_kernels.cc`: TensorFlow's stateless Philox uniforms, bit
  for bit, with the rounds vectorised, and Box-Muller normals on them in the
  same pass (`random_ops`).

The library is built against the installed TensorFlow (its headers and
`tf.sysconfig` flags) into a cache folder, once per source, TensorFlow
version, compiler and flag set (`build`):

    $KERAS_NSDE_CACHE (default ~/.cache/keras_nsde)/keras_nsde_kernels-<key>.so (and .log)

Where it cannot be built or loaded (no C++ compiler, no TensorFlow headers, a
compiler error or crash) keras_nsde warns once and runs the same computations
as TensorFlow ops: same numbers up to float rounding, slower.
`KERAS_NSDE_KERNELS=0` turns the kernels off.

SavedModels traced with the kernels need this library registered where they
load; trace inside `with portable_ops():` (and `tf.saved_model.save` always
does) to export graphs of TensorFlow's own ops, which TF Serving and a bare
`tf.saved_model.load` run.

Every kernel has a TensorFlow-op twin that defines what it computes and is
tested equal to it. Gradients are the twins' gradients, except the Winograd
convolution's, which is written from the Winograd kernels themselves
(`conv_ops`); everything built on them differentiates to any order.
"""

import contextlib
import functools
import os
import sys
import threading
import warnings

import tensorflow as tf

from keras_nsde.backend.tensorflow.kernels.build import KernelBuildError, build_library

try:  # No public API says whether tf.saved_model.save is tracing; without it, use portable_ops().
    from tensorflow.python.saved_model.save_context import in_save_context
except ImportError:  # pragma: no cover - a TensorFlow that moved it

    def in_save_context():
        return False


def kernels_enabled():
    return os.environ.get("KERAS_NSDE_KERNELS", "1") != "0"


@functools.lru_cache(maxsize=None)
def load_kernels():
    """The compiled op library, or None where it is turned off or cannot be built (one warning)."""
    if not kernels_enabled() or not sys.platform.startswith("linux"):
        return None
    try:
        return tf.load_op_library(str(build_library()))
    except (KernelBuildError, OSError, tf.errors.OpError) as error:
        warnings.warn(
            f"keras_nsde: could not build its CPU kernels ({error}); GroupNorm and convolutions "
            "run as TensorFlow ops instead (same results, slower). Set KERAS_NSDE_KERNELS=0 to silence this.",
            stacklevel=2,
        )
        return None


_tracing = threading.local()


@contextlib.contextmanager
def portable_ops():
    """Within this block, keras_nsde traces TensorFlow's own ops instead of its kernels.

    For graphs that must run without keras_nsde: SavedModels for TF Serving
    or for a process that loads them without importing keras_nsde.
    """
    previous = getattr(_tracing, "portable", False)
    _tracing.portable = True
    try:
        yield
    finally:
        _tracing.portable = previous


def can_fuse(x):
    """Whether the compiled kernels can run on x here: float32, no GPU, not in XLA, not exporting."""
    return x.dtype == tf.float32 and kernels_usable()


def kernels_usable():
    """Whether the compiled kernels can run here: built, no GPU, not in XLA, not exporting."""
    return (
        not getattr(_tracing, "portable", False)
        and not in_save_context()
        and not _in_xla_function()
        and not tf.config.list_physical_devices("GPU")
        and load_kernels() is not None
    )


def _in_xla_function():
    """True while tracing inside `tf.function(jit_compile=True)` (XLA has no custom kernels)."""
    return not tf.executing_eagerly() and tf.__internal__.get_enclosing_xla_context() is not None


def register_twin_gradient(op_type, twin, attr_names=()):
    """Registers d(op_type) as the gradient of `twin(*inputs, **attrs)`, its TF-op definition."""

    @tf.RegisterGradient(op_type)
    def _gradient(op, *output_gradients):
        inputs = [tf.identity(t) for t in op.inputs]  # distinct tensors: one input may be passed twice
        attrs = {name: op.get_attr(name) for name in attr_names}
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = twin(*inputs, **attrs)
        outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
        output_gradients = [tf.zeros_like(o) if g is None else g for o, g in zip(outputs, output_gradients)]
        return tape.gradient(outputs, inputs, output_gradients=output_gradients)
