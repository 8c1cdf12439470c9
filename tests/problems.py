"""SDEs with known solutions, shared by the solver and gradient tests."""

import numpy as np
from keras import ops


def brownian_increments(num_paths, num_steps, t1=1.0, seed=0, dtype="float64"):
    """Fine increments dW of shape (num_steps, num_paths), variance t1 / num_steps."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, np.sqrt(t1 / num_steps), size=(num_steps, num_paths)).astype(dtype)


def coarsen(dW, factor):
    """Sums groups of `factor` consecutive increments: the same path on a coarser grid."""
    return dW.reshape(dW.shape[0] // factor, factor, *dW.shape[1:]).sum(axis=1)


class GeometricBrownianMotion:
    """dx = mu x dt + sigma x dB, x_T = x_0 exp((mu - sigma^2 / 2) T + sigma B_T) (Ito)."""

    def __init__(self, mu=1.0, sigma=1.0, x0=1.0):
        self.mu, self.sigma, self.x0 = mu, sigma, x0

    def drift(self, h, t):
        return self.mu * h

    def diffusion(self, h, t, f):
        return self.sigma * h

    def diffusion_derivative(self, h, t, f):
        return self.sigma * ops.ones_like(h)

    def exact(self, dW, t1=1.0):
        brownian_end = dW.sum(axis=0)
        return self.x0 * np.exp((self.mu - 0.5 * self.sigma**2) * t1 + self.sigma * brownian_end)

    def exact_stratonovich(self, dW, t1=1.0):
        """The solution of the Stratonovich SDE dx = mu x dt + sigma x o dB: x_0 exp(mu T + sigma B_T)."""
        return self.x0 * np.exp(self.mu * t1 + self.sigma * dW.sum(axis=0))

    def mean(self, t):
        return self.x0 * np.exp(self.mu * t)

    def second_moment(self, t):
        return self.x0**2 * np.exp((2 * self.mu + self.sigma**2) * t)


class OrnsteinUhlenbeck:
    """dx = -theta x dt + sigma dB (additive noise): x_T = e^{-theta T} x_0 + sigma int e^{-theta(T-s)} dB_s.

    The stochastic integral has no closed form in B_T alone; `exact` evaluates
    it on the given fine grid with the exact one-step transition
    x_{k+1} = e^{-theta dt} x_k + sigma e^{-theta dt / 2} dW_k, accurate to O(dt^2)
    per step, far below the coarse-grid errors being measured.
    """

    def __init__(self, theta=1.0, sigma=0.5, x0=1.0):
        self.theta, self.sigma, self.x0 = theta, sigma, x0

    def drift(self, h, t):
        return -self.theta * h

    def diffusion(self, h, t, f):
        return self.sigma * ops.ones_like(h)

    def exact(self, dW, t1=1.0):
        dt = t1 / dW.shape[0]
        decay = np.exp(-self.theta * dt)
        x = np.full(dW.shape[1:], self.x0, dtype=dW.dtype)
        for increment in dW:
            x = decay * x + self.sigma * np.exp(-0.5 * self.theta * dt) * increment
        return x


def fitted_order(step_sizes, errors):
    """Slope of log(error) against log(dt): the measured convergence order."""
    slope, _ = np.polyfit(np.log(step_sizes), np.log(errors), 1)
    return slope
