"""Bad and edge inputs, on every backend: each is a clear error that names the argument, or correct behaviour.

In the spirit of Keras' `run_layer_test`: one table of cases per entry
point (constructor arguments, call arguments, the pure solvers, the
configurable objects), each asserting the error type and that the message
names the argument and the value received, raised before any computation.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import SDEBlock, brownian, callbacks, diffusions, gradients, solvers

pytestmark = pytest.mark.all_backends

X = np.random.default_rng(0).normal(size=(2, 6)).astype("float32")


def built_block(**kwargs):
    block = SDEBlock(**{"num_steps": 4, "diffusion": "additive", "sigma": 0.3, **kwargs})
    block.build((None, 6))
    return block


def assert_rejected(make, argument, value=None):
    """make() raises a ValueError whose message names `argument` (and the value received, if given)."""
    with pytest.raises(ValueError) as error:
        make()
    message = str(error.value)
    assert f"{argument}" in message, message
    if value is not None:
        assert value in message, message


CONSTRUCTOR_CASES = [
    ("num_steps", 0), ("num_steps", -3), ("num_steps", 2.5), ("num_steps", "11"), ("num_steps", True),
    ("num_steps", None),
    ("t0", None), ("t0", "zero"), ("t0", math.nan), ("t0", math.inf), ("t0", 2.0),
    ("t1", math.inf), ("t1", math.nan), ("t1", "1"), ("t1", None), ("t1", 0.0), ("t1", -1.0),
    ("sigma", "0.5"), ("sigma", True), ("sigma", -1.0), ("sigma", math.nan), ("sigma", math.inf), ("sigma", [0.5]),
    ("test_time_noise", "no"), ("test_time_noise", 1), ("test_time_noise", None),
    ("return_trajectory", "False"), ("return_trajectory", 0),
    ("seed", 1.5), ("seed", "3"), ("seed", -1), ("seed", 2**40), ("seed", True),
    ("diffusion", "brownian"), ("diffusion", 5),
    ("solver", "rk4"), ("solver", 3),
    ("gradient", "adjoint"),
    ("increments", "uniform"),
    ("drift", "mlp"),
]


@pytest.mark.parametrize("argument, value", CONSTRUCTOR_CASES, ids=[f"{a}={v!r}" for a, v in CONSTRUCTOR_CASES])
def test_constructor_rejects_bad_argument(argument, value):
    kwargs = {"diffusion": "additive", argument: value}
    if argument == "t0" and value == 2.0:
        argument = "t1"  # t0 after t1: the message names both
    if argument in ("diffusion", "solver", "gradient", "increments", "drift") or value is None:
        assert_rejected(lambda: SDEBlock(**kwargs), argument)
    else:
        assert_rejected(lambda: SDEBlock(**kwargs), argument, f"{argument}=")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"gradient": "reversible"}, "solver="),  # needs reversible Heun
        ({"gradient": "pathwise", "solver": "dopri5", "diffusion": "none"}, "gradient="),
        ({"solver": solvers.ReversibleHeun("ito"), "diffusion": "dropout"}, "diffusion="),
        ({"diffusion": "none", "sigma": 0.5}, "sigma="),
        ({"checkpoints": 3}, "checkpoints="),  # moved to gradients.Pathwise
    ],
)
def test_constructor_rejects_combinations_that_do_not_fit(kwargs, argument):
    assert_rejected(lambda: SDEBlock(**{"diffusion": "additive", **kwargs}), argument)


OBJECT_CASES = [
    (lambda: diffusions.Dropout.from_rate("0.5"), "p="),
    (lambda: diffusions.Dropout.from_rate(0), "p="),
    (lambda: diffusions.Dropout.from_rate(1.0), "p="),
    (lambda: diffusions.Dropout.from_rate(True), "p="),
    (lambda: diffusions.Dropout.from_rate(math.nan), "p="),
    (lambda: diffusions.Additive(sigma="x"), "sigma="),
    (lambda: diffusions.Additive(learnable="yes"), "learnable="),
    (lambda: diffusions.Multiplicative(sigma=-1), "sigma="),
    (lambda: brownian.Bernoulli(keep_prob=0), "keep_prob="),
    (lambda: brownian.Bernoulli(keep_prob=1), "keep_prob="),
    (lambda: brownian.Bernoulli(keep_prob="0.5"), "keep_prob="),
    (lambda: brownian.Bernoulli(keep_prob=math.nan), "keep_prob="),
    (lambda: gradients.Pathwise(checkpoints=0), "checkpoints="),
    (lambda: gradients.Pathwise(checkpoints=1.5), "checkpoints="),
    (lambda: gradients.Pathwise(checkpoints="3"), "checkpoints="),
    (lambda: solvers.ReversibleHeun(interpretation="foo"), "interpretation="),
    (lambda: callbacks.StopOnNonFiniteLoss(restore_weights="yes"), "restore_weights="),
]


@pytest.mark.parametrize("make, argument", OBJECT_CASES, ids=[f"case{i}-{a}" for i, (_, a) in enumerate(OBJECT_CASES)])
def test_configurable_objects_reject_bad_arguments(make, argument):
    assert_rejected(make, argument)


CALL_CASES = [
    ({"training": "False"}, "training="),
    ({"training": 1}, "training="),
    ({"noise_seed": 2**40}, "noise_seed="),
    ({"noise_seed": -1}, "noise_seed="),
    ({"noise_seed": 1.5}, "noise_seed="),
    ({"noise_seed": True}, "noise_seed="),
    ({"noise_seed": "3"}, "noise_seed="),
    ({"noise_seed": [1, 2, 3]}, "noise_seed="),
    ({"noise_seed": [1.5, 2.0]}, "noise_seed="),
    ({"noise_seed": [1, 2**35]}, "noise_seed="),
    ({"noise_seed": 3, "dW": np.zeros((4, 2, 6), "float32")}, "noise_seed"),
    ({"dW": np.zeros((3, 2, 6), "float32")}, "dW with shape (3, 2, 6)"),
    ({"dW": np.zeros((4, 6), "float32")}, "dW with shape (4, 6)"),
    ({"dW": np.zeros((4, 1, 2, 6), "float32")}, "dW with shape (4, 1, 2, 6)"),
]


@pytest.mark.parametrize("kwargs, argument", CALL_CASES, ids=[str(i) for i in range(len(CALL_CASES))])
def test_call_rejects_bad_arguments(kwargs, argument):
    block = built_block()
    assert_rejected(lambda: block(X, **kwargs), argument)


def test_call_rejects_integer_inputs_and_a_path_for_the_neural_ode():
    assert_rejected(lambda: built_block()(np.ones((2, 6), "int32")), "inputs.dtype=int32")
    assert_rejected(lambda: built_block(diffusion="none", sigma=None)(X, noise_seed=1), "diffusion=NoDiffusion")


def test_call_rejects_a_feature_dimension_other_than_the_built_one():
    block = built_block()
    block(X)
    assert_rejected(lambda: block(np.ones((2, 5), "float32")), "expected axis -1 of input shape to have value 6")


class WrongShapeDiffusion(diffusions.Diffusion):
    def call(self, h, t, f):
        return ops.ones_like(h[:, :1])  # (batch, 1): would broadcast silently


def test_call_rejects_a_diffusion_that_does_not_return_the_state_shape():
    block = built_block(diffusion=WrongShapeDiffusion(name="narrow"), sigma=None)
    assert_rejected(lambda: block(X, training=True), "'narrow'", "G of shape (2, 1)")


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's 64-bit mode")
def test_float64_block_on_jax_without_x64_is_an_error():
    block = SDEBlock(diffusion="additive", num_steps=2, dtype="float64")
    assert_rejected(lambda: block(X.astype("float64")), "dtype=float64")


def identity_drift(h, t):
    return -h


def unit_diffusion(h, t, f):
    return ops.ones_like(h)


PURE_SOLVER_CASES = [
    ({"dW": np.zeros((4, 3), "float32")}, "dW with shape (4, 3)"),  # one path for the whole batch
    ({"dW": np.zeros((4, 1, 2, 3), "float32")}, "dW with shape (4, 1, 2, 3)"),
    ({"dW": np.zeros((4, 2, 3), "float32"), "num_steps": 5}, "num_steps=5"),
    ({"dW": np.zeros((4, 2, 3), "float32"), "t1": math.inf}, "t1=inf"),
    ({"dW": np.zeros((4, 2, 3), "float32"), "t0": "a"}, "t0='a'"),
    ({"dW": np.zeros((4, 2, 3), "float32"), "t1": -1.0}, "t1=-1.0"),
    ({"dW": None, "num_steps": 0, "diffusion_fn": None}, "num_steps=0"),
    ({"dW": None, "diffusion_fn": None}, "num_steps=None"),
    ({"dW": np.zeros((4, 2, 3), "float32"), "diffusion_fn": None}, "diffusion_fn=None"),
    ({"dW": None}, "dW=None"),
]


@pytest.mark.parametrize("solve", [solvers.euler_maruyama, solvers.milstein, solvers.reversible_heun])
@pytest.mark.parametrize("kwargs, argument", PURE_SOLVER_CASES, ids=[str(i) for i in range(len(PURE_SOLVER_CASES))])
def test_pure_solvers_reject_bad_increments_and_times(solve, kwargs, argument):
    arguments = {"drift_fn": identity_drift, "diffusion_fn": unit_diffusion, "h0": np.ones((2, 3), "float32")}
    arguments.update(kwargs)
    assert_rejected(lambda: solve(**arguments), argument)


def test_numpy_scalars_are_accepted_where_python_ones_are():
    block = SDEBlock(
        diffusion="additive", sigma=np.float32(0.5), num_steps=np.int64(4), t1=np.float64(1.0),
        seed=np.int32(3), test_time_noise=np.bool_(False),
    )
    config = block.get_config()
    assert (config["num_steps"], config["t1"], config["seed"], config["test_time_noise"]) == (4, 1.0, 3, False)
    assert block.diffusion.sigma == 0.5
    assert all(type(config[key]) is kind for key, kind in [("num_steps", int), ("t1", float), ("seed", int)])
    assert gradients.Pathwise(checkpoints=np.int64(2)).checkpoints == 2


def test_noise_seed_as_numpy_int_tensor_pair_and_list_give_the_same_path():
    block = built_block()
    expected = ops.convert_to_numpy(block(X, noise_seed=3))
    for seed in (np.int64(3), [3, 0], np.array([3, 0]), ops.convert_to_tensor(3, "int32"),
                 ops.convert_to_tensor([3, 0], "int32")):
        np.testing.assert_array_equal(ops.convert_to_numpy(block(X, noise_seed=seed)), expected)


def test_dW_as_a_nested_list_is_accepted():
    block = built_block()
    dW = np.random.default_rng(1).normal(size=(4, 2, 6)).astype("float32") * 0.5
    np.testing.assert_allclose(
        ops.convert_to_numpy(block(X, dW=dW.tolist())), ops.convert_to_numpy(block(X, dW=dW)), rtol=1e-6
    )


class NaNDrift(keras.layers.Layer):
    def call(self, h):
        return ops.log(-ops.abs(h) - 1.0)  # NaN for every finite h


def test_non_finite_first_inputs_do_not_switch_the_drift_check_off():
    block = SDEBlock(drift=NaNDrift(name="log_drift"), num_steps=2)
    block(np.full((2, 3), np.nan, "float32"))  # the drift is not to blame for NaN inputs
    assert_rejected(lambda: block(np.ones((2, 3), "float32")), "'log_drift' returned NaN or inf")


def test_fit_with_a_nan_drift_stops_with_an_error_and_finite_weights():
    """Compiled fit (TensorFlow, JAX) cannot check the drift eagerly: StopOnNonFiniteLoss stops it and
    restores the weights. PyTorch's eager fit meets the block's own check first, a ValueError."""
    model = keras.Sequential([keras.Input((3,)), SDEBlock(drift=NaNDrift(), num_steps=2), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    before = [ops.convert_to_numpy(w) for w in model.weights]
    expected = ValueError if keras.backend.backend() == "torch" else callbacks.NonFiniteLossError
    with pytest.raises(expected, match="restored|returned NaN or inf"):
        model.fit(np.ones((8, 3), "float32"), np.ones((8, 1), "float32"), batch_size=4, verbose=0,
                  callbacks=[callbacks.StopOnNonFiniteLoss()])
    for weight, value in zip(model.weights, before):
        np.testing.assert_array_equal(ops.convert_to_numpy(weight), value)
