"""keras_nsde: Neural SDE layers for Keras 3 (Liu et al., 2019).

    model.add(keras_nsde.SDEBlock(diffusion="multiplicative"))
"""

__version__ = "0.2.0"

from keras_nsde import analysis, brownian, callbacks, diffusions, evaluation, gradients, layers, models, solvers
from keras_nsde.allocator import use_pooled_cpu_allocator
from keras_nsde.layers import ConvDrift, GroupNorm, MLPDrift, SDEBlock, TimeConv2D

__all__ = [
    "ConvDrift",
    "GroupNorm",
    "MLPDrift",
    "SDEBlock",
    "TimeConv2D",
    "__version__",
    "analysis",
    "brownian",
    "callbacks",
    "diffusions",
    "evaluation",
    "gradients",
    "layers",
    "models",
    "solvers",
    "use_pooled_cpu_allocator",
]
