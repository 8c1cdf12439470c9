"""keras_nsde: Neural SDE layers for Keras 3 (Liu et al., 2019).

    model.add(keras_nsde.SDEBlock(diffusion="multiplicative"))
"""

__version__ = "0.1.0"

import os

# TensorFlow's pooled (BFC) CPU allocator instead of malloc: big tensors are
# reused from the pool instead of being mapped fresh and page-faulted in on
# every step (~150,000 faults and ~10% of a CIFAR-10 training step). Read when
# TensorFlow first allocates, so it applies when keras_nsde is imported before
# any tensor exists; set TF_CPU_ALLOCATOR_USE_BFC=false to keep malloc.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

from keras_nsde import analysis, brownian, diffusions, evaluation, gradients, layers, models, solvers  # noqa: E402
from keras_nsde.layers import ConvDrift, GroupNorm, MLPDrift, SDEBlock, TimeConv2D  # noqa: E402

__all__ = [
    "ConvDrift",
    "GroupNorm",
    "MLPDrift",
    "SDEBlock",
    "TimeConv2D",
    "__version__",
    "analysis",
    "brownian",
    "diffusions",
    "evaluation",
    "gradients",
    "layers",
    "models",
    "solvers",
]
