"""The TensorFlow backend: graph loops, `tf.custom_gradient`, Philox sampling, fused CPU kernels."""

import math

import tensorflow as tf

from keras_nsde.backend.generic import box_muller, check_dtype
from keras_nsde.backend.tensorflow.custom_vjp import custom_vjp, vjp
from keras_nsde.backend.tensorflow.dormand_prince import dormand_prince
from keras_nsde.backend.tensorflow.forward_mode import input_gradient, jacobian_products, weight_jvp
from keras_nsde.backend.tensorflow.group_norm import group_norm
from keras_nsde.backend.tensorflow.kernels.group_norm_ops import can_fuse
from keras_nsde.backend.tensorflow.kernels.random_ops import philox_normal, philox_uniform
from keras_nsde.backend.tensorflow.loop import loop
from keras_nsde.backend.tensorflow.same_conv import same_conv2d


def accelerated(op, x):
    """TensorFlow's faster drop-in for `op` on x, or None (then the keras.ops version runs).

    "group_norm": one-pass compiled CPU kernels with a closed-form gradient,
    for float32 on a machine without a GPU outside XLA-compiled functions.
    "same_conv2d": Winograd kernels, or convolutions whose gradients run on
    the faster forward kernel (see `same_conv`).
    """
    if op == "group_norm":
        return group_norm if can_fuse(x) else None
    if op == "same_conv2d":
        return same_conv2d
    return None


def seed(values):
    """A per-call seed, int32 of shape (2,)."""
    return tf.cast(values, "int32")


def fold_in(seed, n):
    """The seed of step n: Philox, not "auto_select", so the choice does not depend on the device.

    XLA's kernels map a seed to other numbers than TensorFlow's: a seed fixes
    the path within one execution mode (XLA or not).
    """
    return tf.random.experimental.stateless_fold_in(seed, n, alg="philox")


def uniform(shape, seed, dtype):
    """Uniforms in [0, 1) of `shape`, a function of the seed alone (`tf.random.stateless_uniform`'s Philox numbers)."""
    return philox_uniform(shape, seed, dtype)


def normal(shape, seed, dtype):
    """Standard normals of `shape` by Box-Muller on Philox uniforms, a function of the seed alone.

    On CPU this takes a quarter (with the compiled kernels, where one kernel
    draws the uniforms and transforms them: `kernels.random_ops.philox_normal`)
    to a third (TensorFlow ops) of the time of `tf.random.stateless_normal`
    (benchmarks/op_time.py, docs/performance.md), which runs a slower kernel;
    the two give different numbers for one seed.
    """
    fused = philox_normal(shape, seed, dtype)  # the same normals from one kernel, where the kernels run
    if fused is not None:
        return fused
    count = size(shape)
    return box_muller(uniform([2, (count + 1) // 2], seed, dtype), count, shape)


def replica_seed(seed):
    """Under a multi-replica tf.distribute strategy, the replica id folded into the seed."""
    replica = tf.distribute.get_replica_context()
    if replica is not None and replica.num_replicas_in_sync > 1:
        return tf.random.experimental.stateless_fold_in(seed, replica.replica_id_in_sync_group, alg="philox")
    return seed


def random_shape(x):
    return tf.shape(x)


def size(shape):
    if isinstance(shape, (list, tuple)) and all(isinstance(d, int) for d in shape):
        return math.prod(shape)
    return tf.reduce_prod(shape)


def executing_eagerly(x):
    return tf.executing_eagerly()


def trace(function):
    """`function` as one tf.function (a graph per input signature)."""
    return tf.function(function)


def compile_function(function, input_shape, dtype, jit_compile=False, variables=()):
    """`function(x)` as one tf.function for every x of `input_shape` (None: any size) and `dtype`.

    `jit_compile=True` compiles it with XLA. The function reads and updates
    its Keras variables (`variables`, used by the JAX twin) itself.
    """
    return tf.function(function, input_signature=[tf.TensorSpec(input_shape, dtype)], jit_compile=jit_compile)


def compile_stateful(function, variables=()):
    """`function(*tensors)` as a tf.function, which reads and updates `variables` itself (see the JAX twin)."""
    return tf.function(function)
