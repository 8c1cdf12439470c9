"""SDE solvers: pure functions of (drift, diffusion, h0, dW) that sample nothing."""

from keras_nsde.solvers.euler_maruyama import euler_maruyama, euler_maruyama_step
from keras_nsde.solvers.loop import integrate
from keras_nsde.solvers.milstein import milstein, milstein_step

__all__ = ["euler_maruyama", "euler_maruyama_step", "integrate", "milstein", "milstein_step"]
