"""Bad arguments of the evaluation and analysis functions: a ValueError naming the argument and the value received,
raised before the model runs; NumPy integers and floats accepted where Python ones are."""

import re

import keras
import numpy as np
import pytest

from keras_nsde import SDEBlock, analysis, evaluation
from keras_nsde.models import paper_classifier

pytestmark = pytest.mark.all_backends

IMAGES = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
LABELS = np.array([0, 1, 2, 3])


class CountingModel(keras.Model):
    """A digits classifier that counts its calls (at trace time too), to show that a check ran before it."""

    def __init__(self):
        super().__init__()
        self.classifier = paper_classifier("digits", "additive", filters=4, num_steps=1)
        self.calls = 0

    def call(self, x, training=False):
        self.calls += 1
        return self.classifier(x, training=training)


@pytest.fixture(scope="module")
def counting_model():
    model = CountingModel()
    model(IMAGES[:1])
    return model


@pytest.fixture
def model(counting_model):
    counting_model.calls = 0
    return counting_model


def received(name, value):
    return re.escape(f"{name}={value!r}")


PGD_CASES = [
    ("epsilon", float("nan")), ("epsilon", float("inf")), ("epsilon", -0.5), ("epsilon", "0.5"), ("epsilon", None),
    ("epsilon", True), ("norm", "l3"), ("norm", 1), ("norm", [2]), ("steps", 0), ("steps", 2.5), ("steps", "10"),
    ("step_size", 0.0), ("step_size", 2.0), ("step_size", float("nan")), ("eot_samples", 0), ("eot_samples", 1.0),
    ("batch_size", 0), ("batch_size", -4), ("verbose", -1), ("verbose", "yes"),
]


@pytest.mark.parametrize("name, value", PGD_CASES)
def test_pgd_attack_names_a_bad_argument_before_running_the_model(model, name, value):
    kwargs = {"epsilon": 0.5, name: value}
    with pytest.raises(ValueError, match=received(name, value)):
        evaluation.pgd_attack(model, IMAGES, LABELS, **kwargs)
    assert model.calls == 0


SPSA_CASES = [
    ("epsilon", float("nan")), ("epsilon", -1.0), ("samples", 5), ("samples", 0), ("samples", 4.0),
    ("steps", 0), ("learning_rate", 0.0), ("learning_rate", float("inf")), ("delta", -0.01), ("delta", "small"),
    ("eot_samples", -1),
]


@pytest.mark.parametrize("name, value", SPSA_CASES)
def test_spsa_attack_names_a_bad_argument_before_running_the_model(model, name, value):
    kwargs = {"epsilon": 0.5, name: value}
    with pytest.raises(ValueError, match=received(name, value)):
        evaluation.spsa_attack(model, IMAGES, LABELS, **kwargs)
    assert model.calls == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epsilons": 0.5}, received("epsilons", 0.5)),
        ({"epsilons": []}, received("epsilons", [])),
        ({"epsilons": [0.5, float("nan")]}, received("epsilons", [0.5, float("nan")])),
        ({"epsilons": [-1.0]}, received("epsilons", [-1.0])),
        ({"epsilons": "0.5"}, received("epsilons", "0.5")),
        ({"epsilons": [0.5], "ttn_samples": 0}, received("ttn_samples", 0)),
        ({"epsilons": [0.5], "eot_samples": 0}, received("eot_samples", 0)),
        ({"epsilons": [0.5], "steps": -3}, received("steps", -3)),
        ({"epsilons": [0.5], "norm": "l1"}, received("norm", "l1")),
        ({"epsilons": [0.5], "batch_size": 0}, received("batch_size", 0)),
    ],
)
def test_pgd_accuracy_names_a_bad_argument_before_any_attack(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluation.pgd_accuracy(model, IMAGES, LABELS, **kwargs)
    assert model.calls == 0


def test_attack_correct_names_an_unknown_attack(model):
    with pytest.raises(ValueError, match=received("attack", "fgsm")):
        evaluation.attack_correct(model, IMAGES, LABELS, 0.5, attack="fgsm")
    assert model.calls == 0


@pytest.mark.parametrize(
    "labels, shape",
    [(LABELS[:3], r"\(3,\)"), (LABELS[:, None], r"\(4, 1\)"), (LABELS.astype("float32"), r"\(4,\) and dtype float32")],
)
def test_labels_that_do_not_fit_the_images_are_a_value_error(model, labels, shape):
    with pytest.raises(ValueError, match=rf"y with shape {shape}"):
        evaluation.pgd_attack(model, IMAGES, labels, 0.5)
    assert model.calls == 0


def test_value_error_when_the_model_is_not_a_keras_model():
    with pytest.raises(ValueError, match="model="):
        evaluation.pgd_attack(lambda x: x, IMAGES, LABELS, 0.5)


def test_attacks_accept_numpy_numbers(model):
    x_adv = evaluation.pgd_attack(
        model, IMAGES, LABELS, np.float32(0.5), steps=np.int64(1), eot_samples=np.int32(1), batch_size=np.int64(2)
    )
    assert x_adv.shape == IMAGES.shape and np.all(x_adv >= 0) and np.all(x_adv <= 1)
    accuracies = evaluation.pgd_accuracy(model, IMAGES, LABELS, np.array([0.0, 0.25]), steps=np.int16(1), ttn_samples=2)
    assert set(accuracies) == {0.0, 0.25}


ENSEMBLE_CASES = [
    ("samples", 0), ("samples", -2), ("samples", 2.0), ("samples", "3"), ("samples", True),
    ("batch_size", 0), ("batch_size", -1), ("batch_size", 1.5), ("batch_size", "8"),
    ("from_logits", "yes"), ("jit_compile", "no"),
]


@pytest.mark.parametrize("name, value", ENSEMBLE_CASES)
def test_ensemble_predict_names_a_bad_argument_before_running_the_model(model, name, value):
    with pytest.raises(ValueError, match=received(name, value)):
        evaluation.ensemble_predict(model, IMAGES, **{"samples": 2, name: value})
    assert model.calls == 0


def test_ensemble_accepts_numpy_integers(model):
    probabilities = evaluation.ensemble_predict(model, IMAGES, samples=np.int64(2), batch_size=np.int32(3))
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_ensemble_names_inputs_without_a_batch_axis(model):
    with pytest.raises(ValueError, match=r"x with shape \(8,\)"):
        evaluation.ensemble_predict(model, np.zeros(8, "float32"), samples=2)


@pytest.mark.parametrize(
    "function, kwargs, name, value",
    [
        (analysis.lyapunov_exponent, {"perturbation": 0.0}, "perturbation", 0.0),
        (analysis.lyapunov_exponent, {"perturbation": float("nan")}, "perturbation", float("nan")),
        (analysis.lyapunov_exponent, {"seed": -1}, "seed", -1),
        (analysis.lipschitz_estimate, {"iterations": 0}, "iterations", 0),
        (analysis.lipschitz_estimate, {"iterations": 2.5}, "iterations", 2.5),
    ],
)
def test_analysis_names_a_bad_argument(function, kwargs, name, value):
    block = SDEBlock(diffusion="multiplicative", num_steps=2)
    block.build((None, 3))
    with pytest.raises(ValueError, match=received(name, value)):
        function(block, np.ones((2, 3), "float32"), **kwargs)
