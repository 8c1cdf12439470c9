"""cleverhans' PGD and SPSA against the test-time-noise ensemble: cleverhans.tf2 on TensorFlow, cleverhans.torch on PyTorch.

cleverhans 4.0's JAX attacks do not import with current JAX; on JAX the
attacks are ValueErrors (tests/test_backends.py checks that).
"""

import keras
import numpy as np
import pytest

from keras_nsde import data, evaluation
from keras_nsde.models import paper_classifier

pytestmark = [
    pytest.mark.all_backends,
    pytest.mark.skipif(keras.backend.backend() == "jax", reason="cleverhans has no working JAX attacks"),
]


@pytest.fixture(scope="module")
def digits_ode():
    """A small digits ODE classifier trained for a few seconds (~90% test accuracy)."""
    keras.utils.set_random_seed(0)
    model = paper_classifier("digits", "none", filters=16, num_steps=2)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = data.digits_arrays("train")
    model.fit(x, y, batch_size=32, epochs=6, verbose=0, shuffle=False)
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
