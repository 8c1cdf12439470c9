"""The classifiers of Liu et al. (2019): stem convolution(s) -> SDE block -> GN/ReLU/pool/Dense."""

import keras

from keras_nsde import validation
from keras_nsde.layers.drifts import GROUP_NORM_EPSILON
from keras_nsde.layers.group_norm import GroupNorm
from keras_nsde.layers.sde_block import SDEBlock

INPUT_SHAPES = {"cifar10": (32, 32, 3), "stl10": (96, 96, 3), "tiny_imagenet": (64, 64, 3), "digits": (8, 8, 1)}
NUM_CLASSES = {"cifar10": 10, "stl10": 10, "tiny_imagenet": 200, "digits": 10}
BIG_MODEL = {"stl10", "tiny_imagenet"}
DEFAULT_FILTERS = {"cifar10": 64, "stl10": 256, "tiny_imagenet": 256, "digits": 32}

# Midpoints of the authors' sweeps (docs/paper-setup.md): CIFAR multiplicative
# 1.2-1.8, dropout 0.5-0.9, additive 0.5 in their logs; STL-10 multiplicative
# 0-0.4; Tiny-ImageNet dropout 0.1-1.1. Where they report no sweep (and for
# digits, which is ours) the value is our choice.
DEFAULT_SIGMA = {
    "cifar10": {"additive": 0.5, "multiplicative": 1.5, "dropout": 0.7},
    "stl10": {"additive": 0.5, "multiplicative": 0.2, "dropout": 0.7},
    "tiny_imagenet": {"additive": 0.5, "multiplicative": 0.2, "dropout": 0.6},
    "digits": {"additive": 0.5, "multiplicative": 0.5, "dropout": 0.5},
}


def paper_classifier(dataset, diffusion="none", sigma=None, filters=None, **overrides):
    """The paper's architecture for `dataset`, uncompiled; outputs logits.

    Small model (cifar10, digits): Conv2D(64, 3x3, no padding) -> SDEBlock on
    64 channels -> GroupNorm -> ReLU -> global average pool -> Dense. CIFAR-10
    has 115,594 parameters for every diffusion.
    Big model (stl10, tiny_imagenet): Conv(64, 3x3) -> GN -> ReLU ->
    Conv(128, 4x4, /2) -> GN -> ReLU -> Conv(256, 4x4, /2) -> SDEBlock on 256
    channels -> the same head (about 2.44M / 2.49M parameters).
    The SDE block integrates over [0, 1] with N = 11 Euler-Maruyama steps.

    Args:
        dataset: "cifar10", "stl10", "tiny_imagenet" or "digits".
        diffusion: "none", "additive", "multiplicative" or "dropout" (or a
            `Diffusion`).
        sigma: noise level; None takes the authors' value for the dataset.
        filters: channels of the SDE state; default 64 (small model), 256
            (big model), and 32 for digits, whose 8x8 images carry 1/16 of
            CIFAR's pixels (and whose main job must run on 2 CPU cores).
        **overrides: further `SDEBlock` arguments (num_steps, gradient,
            test_time_noise, seed, ...).
    """
    if not isinstance(dataset, str) or dataset not in INPUT_SHAPES:
        raise ValueError(f"dataset must be one of {sorted(INPUT_SHAPES)}. Received: dataset={dataset!r}")
    filters = validation.optional_integer("filters", filters, minimum=1)
    if sigma is None and isinstance(diffusion, str):
        sigma = DEFAULT_SIGMA[dataset].get(diffusion.lower())
    block_args = {"num_steps": 11, "t0": 0.0, "t1": 1.0, **overrides}

    inputs = keras.Input(INPUT_SHAPES[dataset], name="images")
    filters = filters or DEFAULT_FILTERS[dataset]
    if dataset in BIG_MODEL:
        x = keras.layers.Conv2D(64, 3, name="stem_conv_0")(inputs)
        x = _norm_relu(x, "stem_0")
        x = keras.layers.Conv2D(128, 4, strides=2, name="stem_conv_1")(x)
        x = _norm_relu(x, "stem_1")
        x = keras.layers.Conv2D(filters, 4, strides=2, name="stem_conv_2")(x)
    else:
        x = keras.layers.Conv2D(filters, 3, name="stem_conv")(inputs)
    x = SDEBlock(diffusion=diffusion, sigma=sigma, name="sde_block", **block_args)(x)
    x = _norm_relu(x, "head")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(NUM_CLASSES[dataset], name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=f"neural_sde_{dataset}")


def _norm_relu(x, name):
    x = GroupNorm(min(32, x.shape[-1]), epsilon=GROUP_NORM_EPSILON, name=f"{name}_norm")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)
