import keras
import numpy as np
import pytest

from keras_nsde import evaluation
from keras_nsde.evaluation import ensemble_predict, noise_at_inference
from keras_nsde.models import paper_classifier
from tests.harness import tensorflow_only

pytestmark = pytest.mark.all_backends


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(6, 8, 8, 1)).astype("float32")


def test_ensemble_is_a_probability_average_that_settles_as_samples_grow(images):
    model = paper_classifier("digits", "additive", sigma=1.5, num_steps=2, seed=0)
    few = [ensemble_predict(model, images, samples=2) for _ in range(2)]
    many = [ensemble_predict(model, images, samples=200) for _ in range(2)]
    np.testing.assert_allclose(many[0].sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(few[0], few[1])
    spread_few = np.abs(few[0] - few[1]).mean()
    spread_many = np.abs(many[0] - many[1]).mean()
    assert spread_many < spread_few / 3


def test_ensemble_of_the_neural_ode_is_its_softmax(images):
    model = paper_classifier("digits", "none", num_steps=2)
    logits = keras.ops.convert_to_numpy(model(images))
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ensemble_predict(model, images, samples=3), expected, rtol=1e-5)


def test_noise_at_inference_is_restored_afterwards(images):
    model = paper_classifier("digits", "multiplicative", num_steps=2)
    block = model.get_layer("sde_block")
    with noise_at_inference(model) as blocks:
        assert blocks == [block] and block.test_time_noise
    assert not block.test_time_noise


def test_value_error_for_zero_samples(images):
    with pytest.raises(ValueError, match="samples=0"):
        ensemble_predict(paper_classifier("digits", "additive", num_steps=1), images, samples=0)


@tensorflow_only
def test_repeated_ensemble_predictions_trace_once(images):
    model = paper_classifier("digits", "additive", num_steps=2, seed=0)
    for batch in (images, images[:2], images[:5]):
        ensemble_predict(model, batch, samples=3)
    [compiled] = [f for key, f in evaluation.ensemble._COMPILED[model].items() if key[0] == 3]
    assert compiled.experimental_get_tracing_count() == 1


def test_compiled_ensembles_do_not_keep_their_model_alive(images):
    import gc
    import weakref

    model = paper_classifier("digits", "additive", num_steps=2, seed=0)
    ensemble_predict(model, images, samples=2)
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize("jit_compile", [False, True])
def test_consecutive_compiled_ensemble_calls_draw_fresh_noise(images, jit_compile):
    model = paper_classifier("digits", "additive", sigma=1.5, num_steps=2, seed=0)
    first, second = (ensemble_predict(model, images, samples=2, jit_compile=jit_compile) for _ in range(2))
    assert np.abs(first - second).max() > 1e-3


@pytest.mark.parametrize("jit_compile", [False, True])
def test_compiled_ensemble_equals_the_eager_passes_on_the_same_seeded_path(images, jit_compile):
    """From the same seed generator state, the compiled predict and the eager log_probabilities draw one path."""
    model = paper_classifier("digits", "multiplicative", sigma=1.0, num_steps=2, seed=4)
    state = model.get_layer("sde_block").seed_generator.state
    start = keras.ops.convert_to_numpy(state.value)
    ensemble = evaluation.TestTimeEnsemble(model, samples=3, noise=True, jit_compile=jit_compile)
    compiled = ensemble.predict(images)
    assert not np.array_equal(keras.ops.convert_to_numpy(state.value), start)  # the compiled call advanced the seed
    state.assign(start)
    eager = np.exp(keras.ops.convert_to_numpy(ensemble.log_probabilities(keras.ops.convert_to_tensor(images))))
    if jit_compile and keras.backend.backend() == "tensorflow":
        # TensorFlow's XLA kernels map a seed to other (equally valid) numbers than its own kernels (README).
        assert np.abs(compiled - eager).max() > 0
    else:
        np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    noiseless = evaluation.TestTimeEnsemble(model, samples=3, noise=False).predict(images)
    assert np.abs(compiled - noiseless).max() > 1e-3  # the noise was on
