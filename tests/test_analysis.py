import keras
import numpy as np
import pytest

from keras_nsde import SDEBlock, analysis

pytestmark = pytest.mark.all_backends


def toy_block(sigma, t1=5.0, num_steps=5000):
    """dx = x dt + sigma x dB, whose Lyapunov exponent is exactly 1 - sigma^2 / 2 (Ito)."""
    noise = {"diffusion": "multiplicative", "sigma": sigma} if sigma else {}
    block = SDEBlock(drift=keras.layers.Identity(dtype="float64"), t1=t1, num_steps=num_steps, dtype="float64", **noise)
    block.build((None, 1))
    return block


@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.8])
def test_lyapunov_exponent_of_the_toy_is_one_minus_half_sigma_squared(sigma):
    estimate = analysis.lyapunov_exponent(toy_block(sigma), np.ones((2000, 1)), noise_seed=3)
    # Euler-Maruyama's own bias at dt = 1e-3: E log(1 + dt + sigma dW) per unit time loses 3 sigma^4 dt / 4 (0.046 at
    # sigma = 2.8) to the fourth moment; the Monte Carlo error is sigma / sqrt(T * 2000), 0.028 at sigma = 2.8.
    euler_bias = 3 * sigma**4 * 1e-3 / 4
    assert estimate == pytest.approx(1.0 - sigma**2 / 2 - euler_bias, abs=0.1)


def test_lyapunov_curve_starts_at_zero_and_ends_at_the_exponent():
    block = toy_block(1.0, t1=2.0, num_steps=200)
    exponent, times, curve = analysis.lyapunov_exponent(block, np.ones((50, 1)), noise_seed=1, return_curve=True)
    assert times[0] == 0.0 and times[-1] == 2.0 and curve[0] == 0.0
    assert curve[-1] / 2.0 == pytest.approx(exponent)


def test_lipschitz_estimate_of_a_linear_drift_is_its_largest_singular_value():
    dense = keras.layers.Dense(4, use_bias=False, dtype="float64")
    block = SDEBlock(drift=dense, num_steps=2, dtype="float64")
    block.build((None, 4))
    matrix = keras.ops.convert_to_numpy(dense.kernel)
    estimate = analysis.lipschitz_estimate(block, np.random.default_rng(0).normal(size=(1, 4)), iterations=50)
    assert estimate == pytest.approx(np.linalg.svd(matrix, compute_uv=False)[0], rel=1e-6)


def test_stability_bound_is_lipschitz_minus_half_sigma_squared():
    block = toy_block(2.8, num_steps=10)
    lipschitz = analysis.lipschitz_estimate(block, np.ones((3, 1)), iterations=3)
    assert lipschitz == pytest.approx(1.0)
    assert analysis.stability_bound(block, lipschitz) == pytest.approx(1.0 - 2.8**2 / 2)


def test_value_error_for_a_bound_without_multiplicative_noise():
    block = SDEBlock(diffusion="additive", num_steps=2)
    block.build((None, 3))
    with pytest.raises(ValueError, match="diffusion=Additive"):
        analysis.stability_bound(block, 1.0)
