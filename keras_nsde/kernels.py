"""TensorFlow's CPU kernels for keras_nsde (fused GroupNorm(+ReLU), Winograd 3x3 convolutions), by their public name.

    with keras_nsde.kernels.portable_ops():   # trace graphs of TensorFlow's own ops
        ...

The kernels are TensorFlow ops, compiled on first use against the installed
TensorFlow, so this module needs TensorFlow whatever the Keras backend (the
`tensorflow` extra); without it, importing it raises an ImportError that says
so. The JAX and PyTorch backends use their own kernels and never import it.
"""

from keras_nsde import optional

optional.require("tensorflow", extra="tensorflow")

from keras_nsde.backend.tensorflow.kernels import kernels_enabled, load_kernels, portable_ops  # noqa: E402

__all__ = ["kernels_enabled", "load_kernels", "portable_ops"]
