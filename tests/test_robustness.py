import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras
from keras_nsde import data, evaluation
from keras_nsde.evaluation import figures
from keras_nsde.models import paper_classifier


@pytest.fixture(scope="module")
def digits_ode():
    """A small digits ODE classifier trained for a few seconds (~90% test accuracy)."""
    keras.utils.set_random_seed(0)
    model = paper_classifier("digits", "none", filters=16, num_steps=2)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.load("digits", "train", batch_size=32, seed=0), epochs=6, verbose=0, shuffle=False)
    return model


@pytest.fixture(scope="module")
def attack_images():
    x, y = data.digits_arrays("test")
    return x[:40], y[:40]


def test_pgd_with_zero_epsilon_keeps_accuracy_and_larger_epsilon_does_not_raise_it(digits_ode, attack_images):
    x, y = attack_images
    clean = evaluation.accuracy(digits_ode.predict(x, verbose=0), y)
    accuracies = evaluation.pgd_accuracy(digits_ode, x, y, [0.0, 0.5, 2.0], steps=10)
    assert clean > 0.6
    assert accuracies[0.0] == clean
    assert accuracies[2.0] <= accuracies[0.5] <= accuracies[0.0]
    assert accuracies[2.0] < clean


def test_pgd_images_stay_in_the_ball_and_the_unit_box(digits_ode, attack_images):
    x, y = attack_images
    for norm, epsilon in (("l2", 0.7), ("linf", 0.1)):
        x_adv = evaluation.pgd_attack(digits_ode, x, y, epsilon, norm=norm, steps=5)
        delta = (x_adv - x).reshape(len(x), -1)
        size = np.linalg.norm(delta, axis=1) if norm == "l2" else np.abs(delta).max(axis=1)
        assert size.max() <= epsilon + 1e-5 and size.max() > 0
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_eot_attack_runs_on_a_noisy_model(attack_images):
    x, y = attack_images
    model = paper_classifier("digits", "dropout", filters=4, num_steps=2)
    accuracies = evaluation.pgd_accuracy(model, x[:8], y[:8], [0.0, 0.5], steps=2, eot_samples=3, ttn_samples=2)
    assert set(accuracies) == {0.0, 0.5} and all(0 <= a <= 1 for a in accuracies.values())


def test_value_error_for_unknown_norm(digits_ode, attack_images):
    with pytest.raises(ValueError, match="norm='l3'"):
        evaluation.pgd_attack(digits_ode, *attack_images, epsilon=0.1, norm="l3")


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


def test_pgd_accuracy_falls_to_near_zero_at_a_large_epsilon(digits_ode, attack_images):
    x, y = attack_images
    assert evaluation.pgd_accuracy(digits_ode, x, y, [4.0], steps=20)[4.0] <= 0.05


def test_more_pgd_steps_never_raise_accuracy_by_more_than_noise(digits_ode, attack_images):
    x, y = attack_images
    accuracies = [evaluation.pgd_accuracy(digits_ode, x, y, [0.75], steps=steps)[0.75] for steps in (5, 10, 40)]
    one_image = 1.0 / len(x)
    assert accuracies[1] <= accuracies[0] + one_image and accuracies[2] <= accuracies[1] + one_image


@pytest.mark.parametrize("norm, epsilon", [("l2", 1.0), ("linf", 0.15)])
def test_spsa_stays_in_the_ball_and_box_and_lowers_accuracy(digits_ode, attack_images, norm, epsilon):
    x, y = attack_images[0][:6], attack_images[1][:6]
    keras.utils.set_random_seed(0)
    x_adv = evaluation.spsa_attack(digits_ode, x, y, epsilon, norm=norm, steps=20, samples=32, learning_rate=0.05)
    delta = (x_adv - x).reshape(len(x), -1)
    size = np.linalg.norm(delta, axis=1) if norm == "l2" else np.abs(delta).max(axis=1)
    assert size.max() <= epsilon + 1e-5 and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    clean = evaluation.accuracy(digits_ode.predict(x, verbose=0), y)
    attacked = evaluation.accuracy(digits_ode.predict(x_adv, verbose=0), y)
    assert attacked < clean


def test_spsa_is_weaker_than_pgd_on_a_model_with_honest_gradients(digits_ode, attack_images):
    x, y = attack_images[0][:12], attack_images[1][:12]
    keras.utils.set_random_seed(0)
    spsa = evaluation.attack_correct(digits_ode, x, y, 1.0, "spsa", steps=10, samples=32, learning_rate=0.05)
    pgd = evaluation.attack_correct(digits_ode, x, y, 1.0, "pgd", steps=20)
    assert spsa.mean() >= pgd.mean()  # gradients that work: the gradient attack is the stronger one


def test_value_error_for_an_odd_spsa_sample_count(digits_ode, attack_images):
    with pytest.raises(ValueError, match="samples=5"):
        evaluation.spsa_attack(digits_ode, *attack_images, epsilon=0.5, samples=5)
