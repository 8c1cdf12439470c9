"""Brownian increments dW_n for a time grid of `num_steps` equal steps.

    SDEBlock(increments="gaussian")   or   SDEBlock(increments=keras_nsde.brownian.Bernoulli(keep_prob=0.8))

A path object hands the solver one increment per step, `path.increment(n)`,
with the shape of the state h. The solver never samples: it asks the path.
Seeded paths derive step n's increment from a per-call seed and n alone
(stateless sampling), so the same path can be replayed in the backward pass
of the pathwise gradient without storing N noise tensors. A seed gives the
same path eagerly and under `tf.function`; XLA-compiled code draws another,
equally valid path from it (its random kernels differ from TensorFlow's).
Each backend draws its own numbers from a seed (`keras_nsde.backend`), the
same on every call.
"""

import numbers

import keras
import numpy as np
from keras import ops

from keras_nsde import backend, registry, validation

# Seeds are kept in [0, 2**31 - 1]: every backend's seed dtype (int32 for TensorFlow's samplers) holds them.
MAX_SEED = 2**31 - 1


def as_seed(noise_seed, name="noise_seed"):
    """A per-call seed `[s, c]` (int32, shape (2,)) from an int s (c = 0), a pair, or an integer tensor.

    Python and NumPy integers, arrays and concrete (eager) tensors are
    range-checked (each word in [0, 2**31 - 1], so no backend wraps them onto
    another seed's path); a traced integer tensor of shape () or (2,) is taken
    as it is.
    """
    noise_seed = _concrete_seed(noise_seed)
    if isinstance(noise_seed, numbers.Integral) and not isinstance(noise_seed, (bool, np.bool_)):
        return np.array([validation.integer(name, noise_seed, 0, MAX_SEED), 0], "int32")
    if isinstance(noise_seed, (list, tuple, np.ndarray)):
        try:
            words = np.asarray(noise_seed)
        except ValueError:  # a ragged list
            words = np.asarray(None)
        if words.dtype.kind not in "iu" or words.shape not in ((), (2,)):
            raise ValueError(
                f"{name} must be an int or two ints (an integer array of shape (2,)). "
                f"Received: {name}={noise_seed!r}"
            )
        for word in words.reshape(-1):
            validation.integer(name, word, 0, MAX_SEED)
        return np.array([int(words), 0] if words.shape == () else words, "int32")
    if not ops.is_tensor(noise_seed) or "int" not in keras.backend.standardize_dtype(noise_seed.dtype):
        raise ValueError(
            f"{name} must be an int, two ints, or an integer tensor of shape (2,) (see SDEBlock.new_noise_seed). "
            f"Received: {name}={noise_seed!r}"
        )
    if tuple(noise_seed.shape) not in ((), (2,)):
        raise ValueError(f"{name} must have shape () or (2,). Received: {name} with shape {tuple(noise_seed.shape)}")
    seed = ops.cast(noise_seed, "int32")
    return ops.stack([seed, ops.zeros_like(seed)]) if tuple(noise_seed.shape) == () else seed


def _concrete_seed(noise_seed):
    """A concrete (eager) tensor as a NumPy array, to be range-checked; a traced one as it is.

    Keras' `Layer.__call__` turns a NumPy `noise_seed` into a tensor, so
    `np.int64(-5)` arrives here as an eager tensor.
    """
    if ops.is_tensor(noise_seed) and backend.get().executing_eagerly(noise_seed):
        try:
            return ops.convert_to_numpy(noise_seed)
        except Exception:  # no value yet (a symbolic tensor)
            return noise_seed
    return noise_seed


class BrownianPath:
    """Base class: `num_steps` increments, each of variance `dt`."""

    num_steps = None

    def increment(self, n):
        """dW_n, a tensor with the state's shape and dtype."""
        raise NotImplementedError


class GivenIncrements(BrownianPath):
    """Increments supplied as one tensor of shape `(num_steps,) + h.shape`."""

    def __init__(self, dW):
        self.dW = ops.convert_to_tensor(dW)
        if len(self.dW.shape) < 1:
            raise ValueError(
                "dW must have shape (num_steps,) + h0.shape. "
                f"Received: dW with shape {tuple(self.dW.shape)}"
            )
        self.num_steps = self.dW.shape[0]
        if self.num_steps is None:
            raise ValueError(
                "dW must have a static number of steps (first dimension). "
                f"Received: dW with shape {tuple(self.dW.shape)}"
            )

    def increment(self, n):
        return ops.take(self.dW, n, axis=0)


class SeededIncrements(BrownianPath):
    """dW_n = sqrt(dt_n) * xi_n with xi_n of mean 0, variance 1, drawn from fold_in(seed, n).

    Args:
        seed: int32 tensor of shape (2,), the per-call seed.
        shape: the state's shape (the backend's `random_shape`: a tuple, or a shape tensor on TensorFlow).
        dtype: the state's dtype.
        num_steps: number of increments.
        dt: the step size (t1 - t0) / num_steps, or the `num_steps` step sizes dt_n of an irregular grid.
    """

    def __init__(self, seed, shape, dtype, num_steps, dt):
        self.backend = backend.get()
        self.seed = self.backend.seed(seed)
        self.shape = shape
        self.dtype = keras.backend.standardize_dtype(dtype)
        self.num_steps = num_steps
        self.sqrt_dt = ops.sqrt(ops.convert_to_tensor(dt, dtype=self.dtype))
        if len(self.sqrt_dt.shape) not in (0, 1) or len(self.sqrt_dt.shape) == 1 and self.sqrt_dt.shape[0] != num_steps:
            raise ValueError(
                f"dt must be a step size or one per step ({num_steps}). Received: dt with shape {tuple(self.sqrt_dt.shape)}"
            )

    def increment(self, n):
        scale = self.sqrt_dt if len(self.sqrt_dt.shape) == 0 else ops.take(self.sqrt_dt, n)
        return self.scaled_sample(self.backend.fold_in(self.seed, n), scale)

    def scaled_sample(self, seed, scale):
        """scale * xi, xi of the state's shape with mean 0 and variance 1."""
        return scale * self.standardized_sample(seed)

    def standardized_sample(self, seed):
        """xi with the state's shape: mean 0, variance 1."""
        raise NotImplementedError

    def all_increments(self):
        """All increments stacked, shape `(num_steps,) + shape` (for tests and plots)."""
        return ops.stack([self.increment(n) for n in range(self.num_steps)])


class SeededGaussianIncrements(SeededIncrements):
    """dW_n = sqrt(dt) * z_n, z_n ~ N(0, I): Brownian increments (Euler-Maruyama).

    z is the backend's `normal` sampler for step n's seed: Box-Muller on
    Philox uniforms on TensorFlow (faster on CPU than its own normal kernel),
    `jax.random.normal` on JAX, `torch.randn` from a seeded generator on
    PyTorch (one kernel per step where Box-Muller in eager keras.ops is
    seven). Half-precision states are sampled in float32 and cast.
    """

    def standardized_sample(self, seed):
        compute_dtype = "float32" if self.dtype in ("float16", "bfloat16") else self.dtype  # half log/sin lose accuracy
        sample = self.backend.normal(self.shape, seed, compute_dtype)
        return sample if compute_dtype == self.dtype else ops.cast(sample, self.dtype)


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
        kept = ops.cast(self.backend.uniform(self.shape, seed, self.dtype) < p, self.dtype)
        return (kept / p - 1.0) / ((1.0 - p) / p) ** 0.5


class Increments(registry.Configurable):
    """The kind of noise that drives a block: makes each call's seeded `BrownianPath`."""

    name = None

    def path(self, seed, shape, dtype, num_steps, dt):
        """The increments of one call: `num_steps` of them, of variances dt (or dt_n), for a state of `shape`."""
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
        self.keep_prob = validation.number("keep_prob", keep_prob, 0.0, 1.0, exclusive_minimum=True, exclusive_maximum=True)

    def path(self, seed, shape, dtype, num_steps, dt):
        return SeededBernoulliIncrements(seed, shape, dtype, num_steps, dt, self.keep_prob)

    def get_config(self):
        return {"keep_prob": self.keep_prob}


INCREMENTS_BY_NAME = {cls.name: cls for cls in (Gaussian, Bernoulli)}


def get(identifier):
    """An `Increments` from a name ("gaussian", "bernoulli"), a config dict or an instance."""
    return registry.get(identifier, Increments, INCREMENTS_BY_NAME, "increments")
