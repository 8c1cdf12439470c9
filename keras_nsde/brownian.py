"""Brownian increments dW_n for a time grid of `num_steps` equal steps.

    SDEBlock(increments="gaussian")   or   SDEBlock(increments=keras_nsde.brownian.Bernoulli(keep_prob=0.8))

A path object hands the solver one increment per step, `path.increment(n)`,
with the shape of the state h. The solver never samples: it asks the path.
Seeded paths derive step n's increment from a per-call seed and n alone
(stateless sampling), so the same path can be replayed in the backward pass
of the pathwise gradient without storing N noise tensors. A seed gives the
same path eagerly and under `tf.function`; XLA-compiled code draws another,
equally valid path from it (its random kernels differ from TensorFlow's).
"""

import math

import keras
import tensorflow as tf

from keras_nsde import registry


class BrownianPath:
    """Base class: `num_steps` increments, each of variance `dt`."""

    num_steps = None

    def increment(self, n):
        """dW_n, a tensor with the state's shape and dtype."""
        raise NotImplementedError


class GivenIncrements(BrownianPath):
    """Increments supplied as one tensor of shape `(num_steps,) + h.shape`."""

    def __init__(self, dW):
        self.dW = tf.convert_to_tensor(dW)
        if self.dW.shape.rank is None or self.dW.shape.rank < 1:
            raise ValueError(
                "dW must have shape (num_steps,) + h0.shape. "
                f"Received: dW with shape {self.dW.shape}"
            )
        self.num_steps = self.dW.shape[0]
        if self.num_steps is None:
            raise ValueError(
                "dW must have a static number of steps (first dimension). "
                f"Received: dW with shape {self.dW.shape}"
            )

    def increment(self, n):
        return tf.gather(self.dW, n)


class SeededIncrements(BrownianPath):
    """dW_n = sqrt(dt) * xi_n with xi_n of mean 0, variance 1, drawn from fold_in(seed, n).

    Args:
        seed: int32 tensor of shape (2,), the per-call seed.
        shape: the state's shape (a `tf.shape` tensor or a list).
        dtype: the state's dtype.
        num_steps: number of increments.
        dt: the step size (t1 - t0) / num_steps.
    """

    def __init__(self, seed, shape, dtype, num_steps, dt):
        self.seed = tf.cast(seed, "int32")
        self.shape = shape
        self.dtype = tf.as_dtype(dtype)
        self.num_steps = num_steps
        self.sqrt_dt = tf.sqrt(tf.constant(dt, self.dtype))

    def increment(self, n):
        # Philox, not "auto_select", so the choice does not depend on the
        # device. XLA's kernels still map a seed to other numbers than TF's:
        # a seed fixes the path within one execution mode (XLA or not).
        step_seed = tf.random.experimental.stateless_fold_in(self.seed, n, alg="philox")
        return self.scaled_sample(step_seed, self.sqrt_dt)

    def scaled_sample(self, seed, scale):
        """scale * xi, xi of the state's shape with mean 0 and variance 1."""
        return scale * self.standardized_sample(seed)

    def standardized_sample(self, seed):
        """xi with the state's shape: mean 0, variance 1."""
        raise NotImplementedError

    def all_increments(self):
        """All increments stacked, shape `(num_steps,) + shape` (for tests and plots)."""
        return tf.stack([self.increment(n) for n in range(self.num_steps)])


class SeededGaussianIncrements(SeededIncrements):
    """dW_n = sqrt(dt) * z_n, z_n ~ N(0, I): Brownian increments (Euler-Maruyama).

    z comes from Box-Muller on Philox uniforms u, v in [0, 1) (half as many
    pairs as elements): with r = sqrt(-2 log(1 - u)) and a = 2 pi v,
    r cos(a) and r sin(a) are two independent standard normals. The scale
    sqrt(dt) is folded into r. On CPU this takes half the time of
    `tf.random.stateless_normal` (8.4 vs 14.4 ms for the paper's CIFAR-10 state,
    benchmarks/op_time.py), which draws from the same uniforms per pair but
    through a slower kernel; the two give different numbers for one seed.
    """

    def scaled_sample(self, seed, scale):
        compute_dtype = tf.float32 if self.dtype.size < 4 else self.dtype  # float16 log/sin lose accuracy
        size = tf.reduce_prod(self.shape)
        pairs = (size + 1) // 2
        u, v = tf.unstack(tf.random.stateless_uniform([2, pairs], seed=seed, dtype=compute_dtype, alg="philox"))
        scale = tf.cast(scale, compute_dtype)
        radius = tf.sqrt(tf.math.log1p(-u) * (-2.0 * tf.square(scale)))  # 1 - u in (0, 1]: finite
        angle = v * (2.0 * math.pi)
        normals = tf.concat([radius * tf.cos(angle), radius * tf.sin(angle)], axis=0)
        if not (isinstance(self.shape, (list, tuple)) and size_is_even(self.shape)):
            normals = normals[:size]
        return tf.cast(tf.reshape(normals, self.shape), self.dtype)

    def standardized_sample(self, seed):
        return self.scaled_sample(seed, tf.constant(1.0, self.dtype))


def size_is_even(static_shape):
    return all(isinstance(d, int) for d in static_shape) and math.prod(static_shape) % 2 == 0


class SeededBernoulliIncrements(SeededIncrements):
    """dW_n = sqrt(dt) * xi_n, xi = (gamma / p - 1) / sqrt((1 - p) / p), gamma ~ Bernoulli(p).

    A standardised dropout mask (mean 0, variance 1), the variable that the
    paper's Eq. (7) replaces by a Gaussian. With the dropout diffusion
    G = sqrt((1 - p) / p) f, a step is h + f dt + f sqrt(dt) (gamma / p - 1),
    at dt = 1 exactly a residual block whose branch is multiplied by the
    dropout mask gamma / p (Sun, Tao & Du, 2018).

    Weak order: for p = 1/2 xi is the symmetric two-point variable +-1 of the
    Kloeden-Platen simplified weak Euler scheme (weak order 1). For p != 1/2
    its third moment (1 - 2p) / sqrt(p (1 - p)) is not zero, unlike a
    Gaussian's; moments of linear SDEs (which depend only on the increments'
    mean and variance) still converge at order 1, but nonlinear quantities
    can pick up an O(sqrt(dt)) bias and converge more slowly.

    Args:
        keep_prob: p in (0, 1), the probability of keeping a unit.
    """

    def __init__(self, seed, shape, dtype, num_steps, dt, keep_prob=0.5):
        super().__init__(seed, shape, dtype, num_steps, dt)
        if not 0.0 < keep_prob < 1.0:
            raise ValueError(f"keep_prob must be in the open interval (0, 1). Received: keep_prob={keep_prob!r}")
        self.keep_prob = float(keep_prob)

    def standardized_sample(self, seed):
        p = self.keep_prob
        uniform = tf.random.stateless_uniform(self.shape, seed=seed, dtype=self.dtype, alg="philox")
        kept = tf.cast(uniform < p, self.dtype)
        return (kept / p - 1.0) / ((1.0 - p) / p) ** 0.5


class Increments(registry.Configurable):
    """The kind of noise that drives a block: makes each call's seeded `BrownianPath`."""

    name = None

    def path(self, seed, shape, dtype, num_steps, dt):
        """The increments of one call: `num_steps` of them, each of variance dt, for a state of `shape`."""
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_nsde")
class Gaussian(Increments):
    """Brownian increments dW_n ~ N(0, dt) (`SeededGaussianIncrements`)."""

    name = "gaussian"

    def path(self, seed, shape, dtype, num_steps, dt):
        return SeededGaussianIncrements(seed, shape, dtype, num_steps, dt)


@keras.saving.register_keras_serializable(package="keras_nsde")
class Bernoulli(Increments):
    """Standardised dropout masks scaled by sqrt(dt) (`SeededBernoulliIncrements`).

    Args:
        keep_prob: p in (0, 1), the probability of keeping a unit (default 0.5).
    """

    name = "bernoulli"

    def __init__(self, keep_prob=0.5):
        if isinstance(keep_prob, bool) or not isinstance(keep_prob, (int, float)) or not 0.0 < keep_prob < 1.0:
            raise ValueError(f"keep_prob must be in the open interval (0, 1). Received: keep_prob={keep_prob!r}")
        self.keep_prob = float(keep_prob)

    def path(self, seed, shape, dtype, num_steps, dt):
        return SeededBernoulliIncrements(seed, shape, dtype, num_steps, dt, self.keep_prob)

    def get_config(self):
        return {"keep_prob": self.keep_prob}


INCREMENTS_BY_NAME = {cls.name: cls for cls in (Gaussian, Bernoulli)}


def get(identifier):
    """An `Increments` from a name ("gaussian", "bernoulli"), a config dict or an instance."""
    return registry.get(identifier, Increments, INCREMENTS_BY_NAME, "increments")
