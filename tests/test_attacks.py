"""PGD and SPSA against the test-time-noise ensemble, on every backend.

cleverhans.tf2 on TensorFlow, cleverhans.torch on PyTorch, and on JAX the
same algorithms in keras.ops (`evaluation.attacks_keras`), which these tests
also compare with cleverhans' own where cleverhans runs.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import data, evaluation
from keras_nsde.evaluation import attacks_keras
from keras_nsde.models import paper_classifier
from tests.harness import tensorflow_only

pytestmark = pytest.mark.all_backends


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


def cleverhans_pgd(log_probabilities, x, y, epsilon, step_size, steps, norm):
    """cleverhans' own projected_gradient_descent (no random start) for the backend in use."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

        return projected_gradient_descent(
            log_probabilities, tf.constant(x), epsilon, step_size, steps, norm, clip_min=0.0, clip_max=1.0,
            y=tf.constant(y), rand_init=False,
        ).numpy()
    import torch
    from cleverhans.torch.attacks.projected_gradient_descent import projected_gradient_descent

    return projected_gradient_descent(
        log_probabilities, torch.tensor(x), epsilon, step_size, steps, norm, clip_min=0.0, clip_max=1.0,
        y=torch.tensor(y, dtype=torch.int64), rand_init=False,
    ).detach().cpu().numpy()


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="cleverhans' JAX attacks do not import")
@pytest.mark.parametrize("norm, epsilon", [(2, 1.0), (np.inf, 0.1)])
def test_keras_ops_pgd_gives_cleverhans_perturbation(digits_ode, attack_images, norm, epsilon):
    """The JAX attack's algorithm, run here, against cleverhans' PGD from the same start on a deterministic model."""
    x, y = attack_images[0][:16], attack_images[1][:16]
    ensemble = evaluation.TestTimeEnsemble(digits_ode, samples=1)
    steps, step_size = 5, 2.5 * epsilon / 5
    ours = attacks_keras.pgd(ensemble, ensemble.log_probabilities, norm, steps, x)(x, y, epsilon, step_size)
    theirs = cleverhans_pgd(ensemble.log_probabilities, x, y, epsilon, step_size, steps, norm)
    assert np.abs(theirs - x).max() > 0.5 * epsilon if norm == np.inf else np.linalg.norm(theirs - x) > epsilon
    np.testing.assert_allclose(ours - x, theirs - x, atol=1e-5)


@tensorflow_only
def test_keras_ops_attack_pieces_equal_cleverhans_tf2_helpers():
    """clip_eta, optimize_linear, SPSA's projection and margin loss against cleverhans.tf2's functions."""
    import tensorflow as tf
    from cleverhans.tf2 import utils
    from cleverhans.tf2.attacks import spsa

    rng = np.random.default_rng(0)
    eta = rng.normal(size=(4, 5, 5, 1)).astype("float32")
    image = rng.uniform(size=(1, 5, 5, 1)).astype("float32")
    for norm in (2, np.inf):
        np.testing.assert_allclose(
            attacks_keras.clip_eta(ops.convert_to_tensor(eta), norm, 0.3), utils.clip_eta(tf.constant(eta), norm, 0.3),
            rtol=1e-6, atol=1e-7,
        )
        np.testing.assert_allclose(
            attacks_keras.optimize_linear(ops.convert_to_tensor(eta), 0.3, norm),
            utils.optimize_linear(tf.constant(eta), 0.3, norm), rtol=1e-6, atol=1e-7,
        )
    np.testing.assert_allclose(
        attacks_keras.project_perturbation(ops.convert_to_tensor(eta[:1]), 0.3, image, np.inf),
        spsa._project_perturbation(tf.constant(eta[:1]), 0.3, tf.constant(image), clip_min=0.0, clip_max=1.0),
        atol=1e-7,
    )
    logits = rng.normal(size=(6, 10)).astype("float32")
    labels = rng.integers(0, 10, 6).astype("int32")
    np.testing.assert_allclose(
        attacks_keras.margin(ops.convert_to_tensor(logits), ops.convert_to_tensor(labels)),
        -spsa.margin_logit_loss(tf.constant(logits), tf.constant(labels), nb_classes=10), rtol=1e-6,
    )


def test_pgd_with_eot_draws_fresh_noise_at_every_step(attack_images):
    """Each PGD step evaluates the EOT ensemble once: the block's seed generator advances once per step."""
    x, y = attack_images[0][:4], attack_images[1][:4]
    model = paper_classifier("digits", "additive", filters=4, num_steps=2, seed=3)
    state = model.get_layer("sde_block").seed_generator.state
    before = ops.convert_to_numpy(state.value).copy()
    x_adv = evaluation.pgd_attack(model, x, y, 0.5, steps=3, eot_samples=2)
    advanced = ops.convert_to_numpy(state.value) - before
    np.testing.assert_array_equal(advanced, [0, 3])
    assert np.abs(x_adv - x).max() > 0
