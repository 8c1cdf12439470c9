import math

import keras
import numpy as np
import pytest

from keras_nsde import SDEBlock, diffusions
from tests.custom_diffusion import TanhDiffusion

pytestmark = pytest.mark.all_backends

H = np.array([[1.0, -2.0, 0.5]], "float32")
F = np.array([[0.3, 0.1, -4.0]], "float32")


@pytest.mark.parametrize(
    "name, sigma, expected",
    [
        ("none", None, np.zeros_like(H)),
        ("additive", 0.3, np.full_like(H, 0.3)),
        ("multiplicative", 0.3, 0.3 * H),
        ("dropout", 0.3, 0.3 * F),
    ],
)
def test_named_diffusion_returns_its_G(name, sigma, expected):
    diffusion = diffusions.get(name, sigma=sigma)
    diffusion.build(H.shape)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(diffusion(H, t=0.0, f=F)), expected, rtol=1e-6)


def test_dropout_from_rate_follows_equation_8():
    assert diffusions.Dropout.from_rate(0.8).sigma == pytest.approx(math.sqrt(0.2 / 0.8))
    assert diffusions.Dropout.from_rate(0.5).sigma == pytest.approx(1.0)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.2, 1.5])
def test_value_error_when_dropout_rate_is_outside_unit_interval(p):
    with pytest.raises(ValueError, match=f"p={p}"):
        diffusions.Dropout.from_rate(p)


@pytest.mark.parametrize("identifier", ["additive", "multiplicative", "dropout"])
def test_get_accepts_a_name_a_config_and_an_instance(identifier):
    by_name = diffusions.get(identifier, sigma=0.7)
    by_config = diffusions.get(diffusions.serialize(by_name))
    assert by_config is not by_name
    assert type(by_config) is type(by_name)
    assert by_config.get_config() == by_name.get_config()
    assert diffusions.get(by_name) is by_name


def test_custom_subclass_round_trips_through_config():
    custom = TanhDiffusion(initial_scale=0.4)
    restored = diffusions.get(diffusions.serialize(custom))
    assert isinstance(restored, TanhDiffusion)
    assert restored.initial_scale == 0.4


def test_learnable_additive_sigma_is_a_trainable_weight_of_the_block():
    block = SDEBlock(diffusion=diffusions.Additive(0.2, learnable=True), num_steps=2)
    block.build((None, 3))
    sigma_weights = [w for w in block.trainable_weights if w.path.endswith("sigma")]
    assert len(sigma_weights) == 1
    assert tuple(sigma_weights[0].shape) == (3,)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(sigma_weights[0]), 0.2)


def test_value_error_for_unknown_diffusion_name():
    with pytest.raises(ValueError, match="diffusion='brownian'"):
        diffusions.get("brownian")


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), "big"])
def test_value_error_for_invalid_sigma(sigma):
    with pytest.raises(ValueError, match="sigma="):
        diffusions.get("multiplicative", sigma=sigma)


def test_value_error_when_sigma_would_be_ignored():
    with pytest.raises(ValueError, match="sigma=0.5"):
        diffusions.get(diffusions.Multiplicative(0.1), sigma=0.5)
    with pytest.raises(ValueError, match="sigma=0.5"):
        diffusions.get("none", sigma=0.5)
