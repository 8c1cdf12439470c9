import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras
from keras_nsde import data, evaluation
from keras_nsde.evaluation import figures
from keras_nsde.models import paper_classifier


@pytest.fixture(scope="module")
def attack_images():
    x, y = data.digits_arrays("test")
    return x[:40], y[:40]


@pytest.mark.parametrize("diffusion", ["none", "multiplicative"])
def test_perturbation_growth_shares_the_brownian_path(diffusion, attack_images):
    x, _ = attack_images
    model = paper_classifier("digits", diffusion, sigma=1.0 if diffusion != "none" else None, filters=4, num_steps=3)
    times, same_input = evaluation.perturbation_growth(model, x, x, noise_seed=5)
    np.testing.assert_allclose(same_input, 0.0, atol=1e-6)  # one path: no difference at all
    x_perturbed = np.clip(x + 0.1, 0, 1)
    times, norms = evaluation.perturbation_growth(model, x, x_perturbed, noise_seed=5)
    assert times.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    stem = keras.Model(model.input, model.get_layer("sde_block").input)
    start = np.linalg.norm((stem(x_perturbed) - stem(x)).numpy().reshape(len(x), -1), axis=1).mean()
    assert norms[0] == pytest.approx(start, rel=1e-5) and np.all(norms > 0)


def test_corruption_accuracy_reads_each_corruption_and_level():
    model = paper_classifier("cifar10", "none", filters=4, num_steps=1)
    with tfds.testing.mock_data(num_examples=4):
        result = evaluation.corruption_accuracy(model, levels=(1, 5), corruptions=["fog", "snow"], limit=4)
    assert set(result["by_level"]) == {1, 5}
    assert set(result["by_corruption"]) == {"fog", "snow"}
    assert all(0.0 <= a <= 1.0 for a in result["by_level"].values())


def test_toy_paths_decay_only_above_the_ito_threshold():
    times, noiseless = figures.toy_paths(0.0, runs=5, num_steps=200, t1=5.0)
    _, noisy = figures.toy_paths(2.8, runs=400, num_steps=200, t1=5.0)
    assert np.median(noiseless[-1]) == pytest.approx((1 + 5.0 / 200) ** 200)
    # log x_T has mean (1 - sigma^2 / 2) T = -14.6 for sigma = 2.8: the median is tiny.
    assert np.median(np.abs(noisy[-1])) < 1e-3


def test_figures_are_written_as_png(tmp_path):
    figures.plot_toy(tmp_path / "f1.png", runs=20)
    curve = {"epsilons": [0.0, 0.5, 1.0], "mean": [0.9, 0.5, 0.1], "low": [0.85, 0.4, 0.05], "high": [0.95, 0.6, 0.2]}
    figures.plot_accuracy_vs_epsilon(tmp_path / "f3.png", {"ODE": {"PGD": curve}, "dropout": {"PGD+EOT": curve, "SPSA": curve}})
    norms = np.abs(np.random.default_rng(0).normal(size=(3, 64)))
    figures.plot_perturbation_growth(tmp_path / "f4.png", {"ODE": (np.linspace(0, 1, 3), norms)}, caption="test")
    for name in ("f1.png", "f3.png", "f4.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
