"""Stability diagnostics (paper Section 3.3, Corollary 3.2.1).

For dh = f dt + sigma h dB with f L-Lipschitz, a perturbation eps_t of h
driven by the same Brownian path satisfies, almost surely,

    limsup (1/t) log ||eps_t|| <= -(sigma^2 / 2 - L),

so sigma^2 > 2L makes perturbations decay exponentially. These functions
measure the left side on a block's own trajectories and estimate L.
"""

import numbers

import keras
import numpy as np
from keras import ops

from keras_nsde import backend
from keras_nsde.diffusions import Multiplicative
from keras_nsde.evaluation import arguments


def _per_example_norm(x):
    return ops.norm(ops.reshape(x, (x.shape[0], -1)), axis=-1)


def _per_example(values, like):
    """values of shape (batch,) broadcastable against `like`."""
    return ops.reshape(values, (-1,) + (1,) * (len(like.shape) - 1))


def lyapunov_exponent(block, h0, perturbation=1e-4, noise_seed=None, noise=True, seed=0, return_curve=False):
    """Measured exponential growth rate of eps_t = h_t(h0 + eps_0) - h_t(h0) on one Brownian path.

        lambda = mean over the batch of log(||eps_T|| / ||eps_0||) / (t1 - t0)

    Each example gets eps_0 in a random direction with ||eps_0|| =
    perturbation * ||h0|| (or `perturbation` where h0 is zero). Both states
    are integrated with the block's scheme on the same increments, in one
    compiled function (`jax.jit` on JAX, a `tf.function` on TensorFlow).

    Args:
        block: a built `SDEBlock` with a fixed-step solver.
        h0: initial states `(batch, ...)`.
        perturbation: relative size of eps_0.
        noise_seed: the Brownian path (None: a fresh one).
        noise: integrate with the block's diffusion (False: its ODE).
        seed: seed of the perturbation directions.
        return_curve: also return (times, mean log ratio at each step).

    Returns:
        lambda (float), or (lambda, times, curve) with `return_curve`.
    """
    perturbation = arguments.number("perturbation", perturbation, inclusive=False)
    seed = arguments.integer("seed", seed, minimum=0)
    return_curve = arguments.boolean("return_curve", return_curve)
    h0 = ops.convert_to_tensor(h0, block.compute_dtype)
    direction = keras.random.normal(h0.shape, dtype=h0.dtype, seed=seed)
    scale = _per_example_norm(h0)
    scale = ops.where(scale > 0, perturbation * scale, ops.cast(perturbation, h0.dtype))
    eps0 = direction / _per_example(_per_example_norm(direction), h0) * _per_example(scale, h0)
    noisy = bool(noise) and block.diffusion.is_noisy
    if noisy:
        noise_seed = block.new_noise_seed() if noise_seed is None else noise_seed
        if isinstance(noise_seed, numbers.Integral):
            noise_seed = [int(noise_seed), 0]
        noise_seed = ops.convert_to_tensor(noise_seed, "int32")

    def difference_norms(h0, eps0, *noise_seed):
        path = block.brownian_path(h0, noise_seed[0]) if noisy else None
        difference = block.trajectory(h0 + eps0, path) - block.trajectory(h0, path)
        return ops.norm(ops.reshape(difference, (block.num_steps + 1, h0.shape[0], -1)), axis=-1)

    compiled = backend.get().compile_stateful(difference_norms, block.variables)
    norms = ops.convert_to_numpy(compiled(h0, eps0, *([noise_seed] if noisy else [])))  # (N + 1, batch)
    log_ratio = np.log(norms / norms[0]).mean(axis=1)
    duration = block.t1 - block.t0
    exponent = float(log_ratio[-1] / duration)
    if return_curve:
        return exponent, np.linspace(block.t0, block.t1, block.num_steps + 1), log_ratio
    return exponent


def lipschitz_estimate(block, h0, iterations=20, seed=0):
    """Largest singular value of df/dh along the block's noiseless trajectory from h0.

    Power iteration on J^T J with J = df/dh at each state (h_n, t_n):
    forward-mode J v, then reverse-mode J^T (J v) (the backend's
    `jacobian_products`), one compiled iteration (`jax.jit` on JAX, a
    `tf.function` on TensorFlow) called `iterations` times. It is a local lower
    estimate of the drift's Lipschitz constant L over the states visited
    (the batch is treated as one block-diagonal Jacobian, so this is the
    largest over the examples).
    """
    iterations = arguments.integer("iterations", iterations)
    seed = arguments.integer("seed", seed, minimum=0)
    compile_stateful = backend.get().compile_stateful
    states = compile_stateful(block.trajectory, block.variables)(ops.convert_to_tensor(h0, block.compute_dtype))

    def power_step(h, t, v):
        """||J v|| and the next direction J^T J v / ||J^T J v|| at (h, t)."""
        jv, jtjv = backend.get().jacobian_products(lambda h: block.drift_fn(h, t), h, v)
        return ops.norm(ops.reshape(jv, (-1,))), jtjv / ops.norm(ops.reshape(jtjv, (-1,)))

    power_step = compile_stateful(power_step, block.variables)
    times = np.linspace(block.t0, block.t1, block.num_steps + 1)
    largest = 0.0
    for n, t in enumerate(times):
        h = states[n]
        t = ops.convert_to_tensor(t, h.dtype)
        v = keras.random.normal(h.shape, dtype=h.dtype, seed=seed + 1)
        v = v / ops.norm(ops.reshape(v, (-1,)))
        for _ in range(iterations):
            singular_value, v = power_step(h, t, v)
        largest = max(largest, float(ops.convert_to_numpy(singular_value)))
    return largest


def stability_bound(block, lipschitz):
    """Corollary 3.2.1's bound on the exponent, -(sigma^2 / 2 - L), for multiplicative noise."""
    if not isinstance(block.diffusion, Multiplicative):
        raise ValueError(
            "The bound -(sigma^2/2 - L) holds for multiplicative noise G = sigma h. "
            f"Received: diffusion={type(block.diffusion).__name__}"
        )
    return lipschitz - block.diffusion.sigma**2 / 2
