"""Fixed-step SDE solvers: pure functions of (drift, diffusion, h0, dW)."""

from keras_nsde.solvers.euler_maruyama import euler_maruyama, euler_maruyama_step
from keras_nsde.solvers.loop import integrate

__all__ = ["euler_maruyama", "euler_maruyama_step", "integrate"]
