"""Diffusion terms G(h, t; v): none (ODE), additive, multiplicative, dropout."""

import keras

from keras_nsde import registry
from keras_nsde.diffusions.additive import Additive
from keras_nsde.diffusions.base import Diffusion, ScaledDiffusion
from keras_nsde.diffusions.dropout import Dropout
from keras_nsde.diffusions.multiplicative import Multiplicative
from keras_nsde.diffusions.no_diffusion import NoDiffusion

BY_NAME = {
    "none": NoDiffusion,
    "additive": Additive,
    "multiplicative": Multiplicative,
    "dropout": Dropout,
}


def get(identifier, sigma=None, dtype=None):
    """Returns a `Diffusion` from a name, a config dict or an instance.

    Args:
        identifier: one of "none", "additive", "multiplicative", "dropout"
            (or None for "none"), a dict from `serialize`, or a `Diffusion`.
        sigma: the noise level for a named diffusion that has one. Giving it
            together with "none", a dict or an instance is an error rather
            than silently ignored.
        dtype: dtype policy of a diffusion created from a name.
    """
    if identifier is None:
        identifier = "none"
    cls = BY_NAME.get(identifier.lower()) if isinstance(identifier, str) else None
    scaled = cls is not None and issubclass(cls, ScaledDiffusion)
    if not scaled:
        _reject_sigma(identifier, sigma)
    arguments = {"sigma": sigma, "dtype": dtype} if scaled else {"dtype": dtype}
    return registry.get(identifier, Diffusion, BY_NAME, "diffusion", **arguments)


def serialize(diffusion):
    """The config dict of a `Diffusion`, which `get` turns back into one."""
    return keras.saving.serialize_keras_object(diffusion)


def _reject_sigma(identifier, sigma):
    if sigma is not None:
        raise ValueError(
            f"sigma applies only to a named diffusion with a noise level "
            f"({sorted(n for n, c in BY_NAME.items() if issubclass(c, ScaledDiffusion))}); "
            f"set it on the diffusion itself. Received: sigma={sigma!r} with diffusion={identifier!r}"
        )


__all__ = [
    "Additive",
    "Diffusion",
    "Dropout",
    "Multiplicative",
    "NoDiffusion",
    "ScaledDiffusion",
    "get",
    "serialize",
]
