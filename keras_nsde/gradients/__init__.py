"""Gradient methods for the SDE solve: autodiff through the loop, pathwise (Theorem 3.1), or reversible."""

from keras_nsde import registry
from keras_nsde.gradients.jvp import pathwise_jvp
from keras_nsde.gradients.methods import Autodiff, GradientMethod, Pathwise, Reversible

BY_NAME = {cls.name: cls for cls in (Autodiff, Pathwise, Reversible)}


def get(identifier):
    """A `GradientMethod` from a name ("autodiff", "pathwise", "reversible"), a config or an instance."""
    return registry.get(identifier, GradientMethod, BY_NAME, "gradient")


__all__ = [
    "Autodiff",
    "GradientMethod",
    "Pathwise",
    "Reversible",
    "get",
    "pathwise_jvp",
]
