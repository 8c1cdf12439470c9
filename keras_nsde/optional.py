"""Optional dependencies: imported where they are used, with an error that names the pip extra.

    cleverhans = optional.require("cleverhans", extra="attacks")
"""

import importlib

# pip extra -> what it installs (pyproject.toml's [project.optional-dependencies]).
EXTRAS = {
    "tensorflow": "TensorFlow",
    "attacks": "cleverhans",
    "data": "tensorflow-datasets and scikit-learn",
    "plots": "matplotlib",
    "stats": "scipy",
    "dopri5": "tensorflow-probability and tf_keras",
    "dopri5-jax": "diffrax",
    "dopri5-torch": "torchdiffeq",
    "timeseries": "statsmodels",
    "bench": "PyTorch and torchsde",
}


def require(module, extra):
    """Imports `module`, or raises ImportError saying which keras_nsde extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"This keras_nsde feature needs {module!r} ({EXTRAS[extra]}), which is not installed. "
            f'Install it with: pip install "keras_nsde[{extra}]" (or ".[{extra}]" from a checkout).'
        ) from error
