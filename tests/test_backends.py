"""The core on the current Keras backend: run with KERAS_BACKEND=tensorflow, jax or torch.

Everything here speaks keras.ops and public Keras APIs, so the same checks
run on every backend (`.ci/run` runs the suite once per backend).
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

import keras_nsde
from keras_nsde import solvers
from tests.harness import value_and_gradients
from tests.problems import GeometricBrownianMotion, brownian_increments, coarsen, fitted_order

pytestmark = pytest.mark.all_backends

SAVED_UNDER_TENSORFLOW = os.path.join(os.path.dirname(__file__), "data", "saved_under_tensorflow")
IMAGE_SHAPE = (8, 8, 4)


def images(batch=16, seed=0):
    return np.random.default_rng(seed).normal(size=(batch,) + IMAGE_SHAPE).astype("float32")


def labels(x):
    """A learnable task: the class is the brightest of the first three channels."""
    return np.argmax(x[..., :3].mean(axis=(1, 2)), axis=-1)


def labelled_images(batch, seed=0):
    """Images whose class channel is brighter by 1 (see `labels`)."""
    x = images(batch, seed)
    y = np.random.default_rng(seed + 1).integers(0, 3, size=batch)
    x[..., :3] += np.eye(3, dtype="float32")[y][:, None, None, :]
    return x, labels(x)


def classifier(gradient="autodiff", diffusion="multiplicative", seed=None, num_steps=4):
    """The issue's usage line on image-shaped input: SDEBlock, pooling, a dense head."""
    return keras.Sequential(
        [
            keras.Input(IMAGE_SHAPE),
            keras_nsde.SDEBlock(diffusion=diffusion, num_steps=num_steps, gradient=gradient, seed=seed, name="block"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )


def numpy(x):
    return ops.convert_to_numpy(x)


def test_multiplicative_block_on_images_fits_with_finite_falling_losses():
    keras.utils.set_random_seed(0)
    model = classifier()
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = labelled_images(32)
    losses = model.fit(x, y, epochs=8, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.9 * losses[0], losses


def test_training_calls_draw_fresh_noise_and_a_noise_seed_replays_it():
    keras.utils.set_random_seed(0)
    block = keras_nsde.SDEBlock(diffusion="multiplicative", num_steps=4)
    x = images(4)
    first, second = numpy(block(x, training=True)), numpy(block(x, training=True))
    assert np.abs(first - second).max() > 1e-3
    noise_seed = np.array([3, 4], "int32")
    replayed = numpy(block(x, noise_seed=noise_seed))
    np.testing.assert_array_equal(numpy(block(x, noise_seed=noise_seed)), replayed)
    assert np.abs(replayed - numpy(block(x, noise_seed=np.array([3, 5], "int32")))).max() > 1e-3
    assert np.abs(numpy(block(x, training=False)) - numpy(block(x, training=False))).max() == 0.0


def test_seed_gives_the_same_paths_call_for_call():
    x = images(4)
    blocks = [keras_nsde.SDEBlock(diffusion="additive", num_steps=3, seed=7) for _ in range(2)]
    blocks[0].build(x.shape)
    blocks[1].build(x.shape)
    blocks[1].set_weights(blocks[0].get_weights())
    for _ in range(2):
        np.testing.assert_array_equal(numpy(blocks[0](x, training=True)), numpy(blocks[1](x, training=True)))


def test_noise_seed_and_dW_replay_one_path_for_two_inputs():
    block = keras_nsde.SDEBlock(diffusion="additive", num_steps=3, seed=1)
    x = images(4)
    noise_seed = np.array([11, 12], "int32")
    path = block.brownian_path(ops.convert_to_tensor(x), noise_seed)
    dW = ops.stack([path.increment(n) for n in range(3)])
    np.testing.assert_allclose(numpy(block(x, dW=dW)), numpy(block(x, noise_seed=noise_seed)), rtol=1e-6, atol=1e-6)
    # additive noise, zero drift: the difference of two inputs' outputs is the difference of the inputs
    zero = keras_nsde.SDEBlock(drift=ZeroDrift(), diffusion="additive", num_steps=3)
    moved = numpy(zero(x + 1.0, noise_seed=noise_seed)) - numpy(zero(x, noise_seed=noise_seed))
    np.testing.assert_allclose(moved, np.ones_like(x), atol=1e-5)


class ZeroDrift(keras.layers.Layer):
    def call(self, h):
        return ops.zeros_like(h)


def test_consecutive_compiled_training_steps_draw_different_noise():
    """With the learning rate 0 the weights stay put: two losses differ only through the noise."""
    keras.utils.set_random_seed(0)
    model = classifier(diffusion="additive")
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile="auto")
    x, y = labelled_images(8)
    losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
    assert len(set(losses)) == 3, losses
    assert float(model.test_on_batch(x, y)) == float(model.test_on_batch(x, y))


def test_keras_file_round_trip_gives_identical_inference(tmp_path):
    keras.utils.set_random_seed(0)
    model = classifier()
    x = images(4)
    expected = numpy(model(x, training=False))
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(numpy(restored(x, training=False)), expected)
    assert restored.get_layer("block").diffusion.sigma == model.get_layer("block").diffusion.sigma


@pytest.mark.parametrize("diffusion", ["none", "multiplicative"])
def test_pathwise_and_autodiff_give_the_same_train_on_batch_losses(diffusion):
    x, y = labelled_images(8)
    losses = {}
    for gradient in ["autodiff", keras_nsde.gradients.Pathwise(checkpoints=2)]:
        keras.utils.set_random_seed(0)
        model = classifier(gradient=gradient, diffusion=diffusion, seed=3, num_steps=5)
        model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        losses[str(gradient)] = [float(model.train_on_batch(x, y)) for _ in range(3)]
    autodiff, pathwise = losses.values()
    assert autodiff[0] != autodiff[-1]  # the weights moved
    np.testing.assert_allclose(pathwise, autodiff, rtol=1e-4)


@pytest.mark.parametrize("checkpoints", [None, 1, 3, 7])
def test_pathwise_gradients_equal_autodiff_gradients(checkpoints):
    """d loss / d (weights, h0) through Theorem 3.1's recomputed backward pass, against autodiff."""
    keras.utils.set_random_seed(0)
    x = images(2)
    block = keras_nsde.SDEBlock(diffusion="multiplicative", num_steps=7, seed=2)
    block.build(x.shape)
    noise_seed = np.array([5, 6], "int32")
    gradients = {}
    for method in ["autodiff", keras_nsde.gradients.Pathwise(checkpoints)]:

        def loss(h0, method=method):
            path = block.brownian_path(h0, noise_seed)
            return ops.sum(ops.square(block.solve(h0, path, gradient=method)))

        gradients[str(method)] = [numpy(g) for g in value_and_gradients(loss, block, x)]
    autodiff, pathwise = gradients.values()
    largest = max(np.abs(expected).max() for expected in autodiff)  # some weights' gradients are 0 up to rounding
    for expected, actual in zip(autodiff, pathwise):
        np.testing.assert_allclose(actual, expected, rtol=2e-4, atol=1e-5 * largest)


def test_pathwise_jvp_is_the_directional_derivative_along_the_weights():
    """Forward-mode beta_T v (Theorem 3.1) against reverse mode: <u, beta_T v> = <d<u, h_T>/dw, v> on one path."""
    keras.utils.set_random_seed(0)
    x = images(2)
    block = keras_nsde.SDEBlock(diffusion="multiplicative", num_steps=3, seed=2)
    block.build(x.shape)
    noise_seed = np.array([5, 6], "int32")
    rng = np.random.default_rng(0)
    direction = [rng.normal(size=v.shape).astype("float32") for v in block.trainable_variables]
    cotangent = rng.normal(size=x.shape).astype("float32")
    h_final, beta_v = keras_nsde.gradients.pathwise_jvp(block, x, direction, noise_seed=noise_seed)
    np.testing.assert_allclose(numpy(h_final), numpy(block(x, noise_seed=noise_seed)), rtol=1e-5, atol=1e-5)

    def loss(h0):
        return ops.sum(ops.convert_to_tensor(cotangent) * block.solve(h0, block.brownian_path(h0, noise_seed)))

    weight_gradients = value_and_gradients(loss, block, x)[1:]
    reverse = sum(float(np.sum(numpy(g) * d)) for g, d in zip(weight_gradients, direction))
    assert float(np.sum(cotangent * numpy(beta_v))) == pytest.approx(reverse, rel=1e-4)


@pytest.mark.parametrize("relu", [False, True])
def test_group_norm_equals_keras_group_normalization_in_value_and_gradient(relu):
    """The backend's group norm (PyTorch: torch's fused kernel on a channels-last view) against Keras' layers."""
    rng = np.random.default_rng(0)
    x = rng.normal(loc=1.0, scale=2.0, size=(2, 5, 6, 8)).astype("float32")
    weights = [rng.uniform(0.5, 1.5, 8).astype("float32"), rng.normal(size=8).astype("float32")]
    ours = keras_nsde.GroupNorm(4, relu=relu)
    reference = keras.Sequential([keras.layers.GroupNormalization(4, epsilon=1e-5)] + [keras.layers.ReLU()] * relu)
    results = []
    for layer in (ours, reference):
        layer.build(x.shape)
        layer.set_weights(weights)
        value = numpy(layer(x))
        results.append([value, *value_and_gradients(lambda h, layer=layer: ops.sum(ops.sin(layer(h))), layer, x)])
    for got, want in zip(*results):
        np.testing.assert_allclose(numpy(got), numpy(want), rtol=1e-4, atol=1e-4)


def test_group_norm_under_mixed_precision_keeps_float16_output():
    layer = keras_nsde.GroupNorm(2, dtype="mixed_float16")
    y = layer(np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32"))
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    np.testing.assert_allclose(numpy(y).astype("float32").reshape(2, -1, 2, 2).mean(axis=(1, 3)), 0.0, atol=2e-3)


def strong_errors(solve, levels=(8, 16, 32, 64), num_paths=1000, fine=256, seed=1):
    """Mean |x_N - x_exact| on GBM paths (closed form x_T = x_0 exp((mu - sigma^2/2) T + sigma B_T)), float32."""
    problem = GeometricBrownianMotion(mu=1.0, sigma=1.0)
    dW_fine = brownian_increments(num_paths, fine, seed=seed, dtype="float32")
    exact = problem.exact(dW_fine.astype("float64"))
    errors = [
        np.mean(np.abs(numpy(solve(problem, np.ones(num_paths, "float32"), coarsen(dW_fine, fine // n))) - exact))
        for n in levels
    ]
    return 1.0 / np.array(levels), np.array(errors)


def test_euler_maruyama_has_strong_order_half_on_geometric_brownian_motion():
    step_sizes, errors = strong_errors(lambda p, x0, dW: solvers.euler_maruyama(p.drift, p.diffusion, x0, dW))
    assert np.all(np.diff(errors) < 0), errors
    assert fitted_order(step_sizes, errors) == pytest.approx(0.5, abs=0.15)


def test_milstein_has_strong_order_one_on_geometric_brownian_motion():
    step_sizes, errors = strong_errors(
        lambda p, x0, dW: solvers.milstein(p.drift, p.diffusion, x0, dW, diffusion_derivative_fn=p.diffusion_derivative),
        seed=2,
    )
    assert fitted_order(step_sizes, errors) == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize("increments", ["gaussian", keras_nsde.brownian.Bernoulli(keep_prob=0.7)])
def test_seeded_increments_have_mean_zero_and_variance_dt(increments):
    path = keras_nsde.brownian.get(increments).path(np.array([1, 2], "int32"), (200, 50), "float32", 4, 0.25)
    samples = np.stack([numpy(path.increment(n)) for n in range(4)])
    assert abs(samples.mean()) < 0.01
    assert samples.var() == pytest.approx(0.25, rel=0.03)
    assert np.abs(samples[0] - samples[1]).max() > 0  # each step its own draw
    np.testing.assert_array_equal(numpy(path.increment(2)), samples[2])  # replayable


def test_paper_classifier_trains_one_step_on_every_backend():
    keras.utils.set_random_seed(0)
    model = keras_nsde.models.paper_classifier("digits", diffusion="multiplicative", filters=8, num_steps=2)
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(size=(4,) + tuple(model.input_shape[1:])).astype("float32")
    loss = float(model.train_on_batch(x, np.arange(4)))
    assert np.isfinite(loss) and loss > 0


def test_test_time_ensemble_averages_noisy_predictions():
    keras.utils.set_random_seed(0)
    model = classifier(diffusion="multiplicative")
    x = images(6)
    ensemble = numpy(keras_nsde.evaluation.ensemble_predict(model, x, samples=4, from_logits=True))
    assert ensemble.shape == (6, 3)
    np.testing.assert_allclose(ensemble.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "name", ["multiplicative_default_drift", "additive_trajectory", "paper_classifier_digits", "dopri5_ode"]
)
def test_keras_file_saved_under_tensorflow_gives_the_same_inference(name):
    """Files written by tests/data/saved_under_tensorflow/generate.py under TensorFlow."""
    reference = np.load(os.path.join(SAVED_UNDER_TENSORFLOW, "outputs.npz"))
    model = keras.saving.load_model(os.path.join(SAVED_UNDER_TENSORFLOW, f"{name}.keras"))
    x = reference["x"][..., : model.input_shape[-1]]
    np.testing.assert_allclose(numpy(model(x, training=False)), reference[name], rtol=1e-4, atol=1e-5)


WITHOUT_TENSORFLOW = """
import sys
import keras, numpy as np
import keras_nsde
model = keras.Sequential([keras.Input((8, 8, 4)), keras_nsde.SDEBlock(diffusion="multiplicative", num_steps=2),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(np.random.rand(8, 8, 8, 4).astype("float32"), np.zeros(8), verbose=0)
keras_nsde.evaluation.ensemble_predict(model, np.random.rand(2, 8, 8, 4).astype("float32"), samples=2, jit_compile=True)
if "--features" in sys.argv:
    import keras_nsde.data
    keras_nsde.evaluation.pgd_accuracy(model, np.random.rand(2, 8, 8, 4).astype("float32"), [0, 1], [0.5], steps=1,
                                       eot_samples=2, ttn_samples=2)
    x, y = keras_nsde.data.digits_arrays("test")
    ode = keras.Sequential([keras.Input((64,)), keras_nsde.SDEBlock(solver="dopri5"), keras.layers.Dense(10)])
    ode.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ode.fit(x[:32].reshape(32, 64), y[:32], verbose=0)
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def run_without_tensorflow(*args):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        pytest.skip("TensorFlow is the backend")
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "tensorflow imported: False"


def test_import_train_and_predict_do_not_import_tensorflow_on_jax_and_torch():
    run_without_tensorflow()


@pytest.mark.slow
def test_attacks_with_eot_digits_and_dopri5_fit_do_not_import_tensorflow_on_jax_and_torch():
    run_without_tensorflow("--features")
