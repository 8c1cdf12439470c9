"""The TensorFlow backend's CPU kernels (`keras_nsde.backend.tensorflow.kernels`) under their public name.

    with keras_nsde.kernels.portable_ops():   # trace graphs of TensorFlow's own ops
        ...
"""

from keras_nsde.backend.tensorflow.kernels import kernels_enabled, load_kernels, portable_ops

__all__ = ["kernels_enabled", "load_kernels", "portable_ops"]
