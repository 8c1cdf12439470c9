"""Gradient methods for the SDE solve: autodiff through the loop, or pathwise."""

from keras_nsde.gradients.jvp import pathwise_jvp
from keras_nsde.gradients.pathwise import integrate_pathwise
from keras_nsde.solvers.loop import integrate

GRADIENT_METHODS = ("autodiff", "pathwise")


def integrate_with(method, step, h0, num_steps, return_trajectory=False, checkpoints=None):
    """Runs the time loop with the named gradient method.

    "autodiff": backpropagation through the `tf.while_loop` (every step's
    activations are kept: O(N) memory). "pathwise": `integrate_pathwise`.
    """
    if method == "pathwise":
        return integrate_pathwise(step, h0, num_steps, return_trajectory, checkpoints)
    return integrate(step, h0, num_steps, return_trajectory)


__all__ = ["GRADIENT_METHODS", "integrate_pathwise", "integrate_with", "pathwise_jvp"]
