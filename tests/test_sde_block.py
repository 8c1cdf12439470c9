import os

import keras
from keras import ops
import numpy as np
import pytest
import tensorflow as tf

import keras_nsde
from keras_nsde import SDEBlock, diffusions, solvers
from keras_nsde.brownian import SeededGaussianIncrements
from tests.custom_diffusion import TanhDiffusion
from tests.harness import run_model_saving_test, run_serialization_test, tensorflow_only

pytestmark = pytest.mark.all_backends

DIFFUSIONS = ["none", "additive", "multiplicative", "dropout"]
NOISY = ["additive", "multiplicative", "dropout"]
STATES = {"conv": (2, 5, 5, 4), "vector": (3, 6)}


def random_state(kind, seed=0):
    return np.random.default_rng(seed).normal(size=STATES[kind]).astype("float32")


def built_block(shape, **kwargs):
    block = SDEBlock(**{"num_steps": 3, **kwargs})
    block.build((None,) + shape[1:])
    return block


def as_numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_usage_line_in_sequential_fits_and_round_trips(tmp_path):
    x = random_state("conv")
    y = np.array([0, 1])
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras_nsde.SDEBlock(diffusion="multiplicative"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = model.fit(x, y, epochs=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    run_model_saving_test(model, x, tmp_path / "model.keras")


@pytest.mark.parametrize("kind", STATES)
@pytest.mark.parametrize("diffusion", DIFFUSIONS)
def test_training_output_has_input_shape_and_noise_only_when_noisy(kind, diffusion):
    x = random_state(kind)
    block = built_block(x.shape, diffusion=diffusion, sigma=0.5 if diffusion != "none" else None)
    first, second = as_numpy(block(x, training=True)), as_numpy(block(x, training=True))
    assert first.shape == x.shape
    assert np.all(np.isfinite(first))
    assert np.allclose(first, second) == (diffusion == "none")


@pytest.mark.parametrize("diffusion", NOISY)
def test_inference_without_test_time_noise_is_the_neural_ode(diffusion):
    x = random_state("vector")
    block = built_block(x.shape, diffusion=diffusion, sigma=0.5)
    ode = solvers.euler_maruyama(block.drift_fn, None, x, None, num_steps=3)
    np.testing.assert_allclose(as_numpy(block(x, training=False)), as_numpy(ode), rtol=1e-6)
    np.testing.assert_allclose(as_numpy(block(x)), as_numpy(ode), rtol=1e-6)


def test_test_time_noise_keeps_noise_on_at_inference():
    x = random_state("vector")
    block = built_block(x.shape, diffusion="additive", sigma=0.5, test_time_noise=True)
    assert not np.allclose(as_numpy(block(x, training=False)), as_numpy(block(x, training=False)))


def test_same_seed_and_weights_give_the_same_path_call_for_call():
    x = random_state("conv")
    one = built_block(x.shape, diffusion="multiplicative", sigma=0.5, seed=42)
    other = built_block(x.shape, diffusion="multiplicative", sigma=0.5, seed=42)
    other.set_weights(one.get_weights())
    calls_one = [as_numpy(one(x, training=True)) for _ in range(2)]
    calls_other = [as_numpy(other(x, training=True)) for _ in range(2)]
    np.testing.assert_array_equal(calls_one[0], calls_other[0])
    np.testing.assert_array_equal(calls_one[1], calls_other[1])
    assert not np.allclose(calls_one[0], calls_one[1])


def test_noise_seed_replays_one_path_for_two_inputs():
    x, x_perturbed = random_state("vector", 0), random_state("vector", 1)
    block = built_block(x.shape, diffusion="multiplicative", sigma=0.5)
    seed = block.new_noise_seed()
    path = SeededGaussianIncrements(seed, x.shape, "float32", num_steps=3, dt=1 / 3).all_increments()
    for state in (x, x_perturbed):  # float32 states of order 1: atol covers rounding where h_i ends near 0
        expected = solvers.euler_maruyama(block.drift_fn, block.diffusion, state, path)
        np.testing.assert_allclose(as_numpy(block(state, noise_seed=seed)), as_numpy(expected), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(as_numpy(block(state, dW=path)), as_numpy(expected), rtol=1e-6, atol=1e-6)


def test_return_trajectory_is_batch_major_and_ends_at_the_output():
    x = random_state("conv")
    block = built_block(x.shape, diffusion="additive", sigma=0.5, return_trajectory=True)
    trajectory = as_numpy(block(x, noise_seed=7))
    assert trajectory.shape == (x.shape[0], 4) + x.shape[1:]
    assert block.compute_output_shape(x.shape) == trajectory.shape
    np.testing.assert_array_equal(trajectory[:, 0], x)
    final_only = built_block(x.shape, diffusion="additive", sigma=0.5)
    final_only.set_weights(block.get_weights())
    np.testing.assert_allclose(as_numpy(final_only(x, noise_seed=7)), trajectory[:, -1], rtol=1e-6)


def test_drift_without_time_argument_and_drift_with_one():
    x = random_state("vector")
    plain = keras.Sequential([keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(6)])
    block = built_block(x.shape, drift=plain, diffusion="dropout", sigma=0.3)
    assert not block.drift_takes_time
    assert as_numpy(block(x, training=True)).shape == x.shape
    timed = built_block(x.shape, drift=keras_nsde.MLPDrift(6, hidden_units=8))
    assert timed.drift_takes_time


def test_mixed_precision_policy_is_respected():
    x = random_state("conv")
    block = built_block(x.shape, diffusion="multiplicative", sigma=0.5, dtype="mixed_float16")
    out = block(x, training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert all(w.dtype == "float32" for w in block.weights)
    assert np.all(np.isfinite(as_numpy(out)))


def test_default_conv_drift_has_the_papers_parameter_count():
    block = built_block((1, 6, 6, 64))
    time_convs = 3 * (3 * 3 * 65 * 64 + 64)
    group_norms = 4 * 2 * 64
    assert block.count_params() == time_convs + group_norms


@pytest.mark.parametrize(
    "diffusion",
    DIFFUSIONS + [diffusions.Additive(0.2, learnable=True), TanhDiffusion(0.3)],
    ids=DIFFUSIONS + ["learnable_additive", "custom"],
)
def test_config_and_keras_file_round_trips(diffusion, tmp_path):
    x = random_state("conv")
    block = SDEBlock(diffusion=diffusion, num_steps=2, test_time_noise=False, seed=5)
    run_serialization_test(block, x)
    model = keras.Sequential([keras.Input(x.shape[1:]), block, keras.layers.Flatten(), keras.layers.Dense(3)])
    restored = run_model_saving_test(model, x, tmp_path / "model.keras")
    assert type(restored.layers[0].diffusion) is type(block.diffusion)


def sequential_model():
    return keras.Sequential([keras.Input((6,)), SDEBlock(diffusion="multiplicative", sigma=0.1), keras.layers.Dense(1)])


def functional_model():
    inputs = keras.Input((6,))
    hidden = SDEBlock(diffusion="additive", sigma=0.1)(keras.layers.Dense(6)(inputs))
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


class SubclassedModel(keras.Model):
    def __init__(self):
        super().__init__()
        self.block = SDEBlock(diffusion="dropout", sigma=0.1)
        self.head = keras.layers.Dense(1)

    def call(self, x, training=None):
        return self.head(self.block(x, training=training))


@pytest.mark.parametrize("build_model", [sequential_model, functional_model, SubclassedModel])
def test_fit_lowers_the_loss(build_model):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = np.sin(x[:, :1]) + 0.5 * x[:, 1:2]
    model = build_model()
    model.compile(keras.optimizers.Adam(0.02), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * before


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"diffusion": "brownian"}, "diffusion='brownian'"),
        ({"num_steps": 0}, "num_steps=0"),
        ({"num_steps": 2.5}, "num_steps=2.5"),
        ({"t0": 1.0, "t1": 0.5}, "t1=0.5"),
        ({"diffusion": "additive", "sigma": -1.0}, "sigma=-1.0"),
        ({"gradient": "adjoint"}, "gradient='adjoint'"),
        ({"checkpoints": 0}, "checkpoints=0"),
        ({"drift": "mlp"}, "drift='mlp'"),
    ],
)
def test_value_error_names_the_bad_argument(kwargs, received):
    with pytest.raises(ValueError, match=received.replace("(", r"\(").replace(".", r"\.")):
        SDEBlock(**kwargs)


def test_value_error_when_dropout_rate_is_out_of_range():
    with pytest.raises(ValueError, match="p=1.2"):
        SDEBlock(diffusion=diffusions.Dropout.from_rate(1.2))


def test_value_error_when_drift_changes_the_shape_at_build_time():
    block = SDEBlock(drift=keras.layers.Dense(4))
    with pytest.raises(ValueError, match=r"output shape \(None, 4\).*input_shape=\(None, 6\)"):
        block.build((None, 6))


def test_value_error_for_non_floating_inputs():
    block = built_block((2, 3))
    with pytest.raises(ValueError, match="inputs.dtype=int32"):
        block(tf.ones((2, 3), "int32"))


def test_value_error_for_a_state_rank_without_default_drift():
    with pytest.raises(ValueError, match=r"input_shape=\(None, 4, 3\)"):
        SDEBlock().build((None, 4, 3))


def test_value_error_names_both_shapes_when_dW_has_the_wrong_number_of_steps():
    block = SDEBlock(diffusion="multiplicative", num_steps=4)
    x = tf.ones((2, 3))
    with pytest.raises(ValueError, match=r"\(4, 2, 3\).*Received: dW with shape \(3, 2, 3\)"):
        block(x, training=True, dW=tf.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match=r"\(4, 2, 3\).*Received: dW with shape \(4, 2, 5\)"):
        block(x, training=True, dW=tf.zeros((4, 2, 5)))


class NaNDrift(keras.layers.Layer):
    def call(self, h):
        return ops.log(-ops.abs(h) - 1.0)  # NaN everywhere


def test_value_error_when_the_drift_returns_nan_on_the_first_eager_call():
    block = SDEBlock(drift=NaNDrift(name="log_drift"), num_steps=2)
    with pytest.raises(ValueError, match="'log_drift' returned NaN or inf"):
        block(tf.ones((2, 3)))


def test_non_finite_inputs_are_not_blamed_on_the_drift():
    block = SDEBlock(num_steps=2)
    out = block(tf.constant([[np.nan, 1.0, 2.0]]))
    assert np.isnan(as_numpy(out)).any()


def test_value_error_for_a_path_given_to_the_neural_ode():
    block = built_block((2, 3))
    with pytest.raises(ValueError, match="noise_seed and dW need a noisy diffusion"):
        block(np.ones((2, 3), "float32"), noise_seed=1)


def test_value_error_on_a_backend_keras_nsde_does_not_run_on(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(ValueError, match="backend='numpy'"):
        SDEBlock()


LEGACY = os.path.join(os.path.dirname(__file__), "data", "legacy_0_1_0")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("pathwise_checkpoints", lambda b: b.gradient == keras_nsde.gradients.Pathwise(checkpoints=2)),
        ("bernoulli_keep_prob", lambda b: b.increments == keras_nsde.brownian.Bernoulli(keep_prob=0.7)),
        pytest.param(
            "dopri5_tolerances",
            lambda b: b.solver == keras_nsde.solvers.Dopri5(rtol=1e-4, atol=1e-7),
            marks=tensorflow_only,
        ),
        ("milstein", lambda b: b.solver == keras_nsde.solvers.Milstein()),
    ],
)
def test_keras_files_of_release_0_1_0_still_load(name, expected):
    """Files saved by keras_nsde 0.1.0, whose SDEBlock took checkpoints, keep_prob, rtol and atol."""
    reference = np.load(os.path.join(LEGACY, "outputs.npz"))
    model = keras.saving.load_model(os.path.join(LEGACY, f"{name}.keras"))
    assert expected(model.get_layer("block"))
    np.testing.assert_allclose(as_numpy(model(reference["x"], training=False)), reference[name], rtol=1e-5, atol=1e-6)
