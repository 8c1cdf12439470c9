"""The paths that GPU users take: Keras compiles with XLA (jit_compile) by default on GPUs.

Pathwise = autodiff under XLA: tests/test_gradients.py::test_pathwise_gradient_compiles_with_xla.
"""

import keras
import numpy as np
import pytest

from keras_nsde import SDEBlock
from keras_nsde.evaluation import ensemble_predict
from keras_nsde.models import paper_classifier

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(8, 8, 8, 1)).astype("float32")
LABELS = RNG.integers(0, 10, 8)


def compiled(model, jit_compile, learning_rate=0.05):
    model.compile(
        keras.optimizers.SGD(learning_rate, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def block_model(gradient="autodiff", diffusion="multiplicative"):
    return keras.Sequential([
        keras.Input((6, 6, 8)),
        SDEBlock(diffusion=diffusion, num_steps=3, seed=1, gradient=gradient),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])


@pytest.mark.parametrize("gradient", ["autodiff", "pathwise"])
def test_sde_block_fits_under_xla(gradient):
    x = RNG.normal(size=(16, 6, 6, 8)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")
    losses = compiled(block_model(gradient), jit_compile=True).fit(x, y, epochs=6, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_consecutive_xla_training_steps_draw_new_noise():
    model = compiled(block_model(), jit_compile=True, learning_rate=0.0)  # weights fixed: only the noise moves the loss
    x = RNG.normal(size=(4, 6, 6, 8)).astype("float32")
    losses = [float(model.train_on_batch(x, np.zeros(4))) for _ in range(3)]
    assert len(set(losses)) == 3


def test_paper_classifier_step_under_xla_equals_the_graph_step():
    models = [paper_classifier("digits", "none", num_steps=3) for _ in range(2)]
    models[1].set_weights(models[0].get_weights())
    losses = [[float(compiled(m, jit).train_on_batch(IMAGES, LABELS)) for _ in range(2)] for m, jit in zip(models, (False, True))]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


def test_test_time_ensemble_under_xla():
    noisy = paper_classifier("digits", "multiplicative", num_steps=2, seed=0)
    probabilities = ensemble_predict(noisy, IMAGES, samples=4, jit_compile=True)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(probabilities, ensemble_predict(noisy, IMAGES, samples=4, jit_compile=True))
    ode = paper_classifier("digits", "none", num_steps=2)
    logits = ode(IMAGES).numpy()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ensemble_predict(ode, IMAGES, samples=3, jit_compile=True), softmax, rtol=1e-4, atol=1e-6)
