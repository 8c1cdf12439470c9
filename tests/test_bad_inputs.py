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


# Cases found by benchmarks/bad_input_sweep.py (a new user's sweep over the public API).

SWEEP_CONSTRUCTOR_CASES = [
    ({"num_steps": 2**31}, "num_steps=2147483648"),
    ({"dtype": "int32"}, "dtype=int32"),
    ({"diffusion": {"class_name": "Foo", "config": {}}}, "diffusion="),
    ({"solver": {"class_name": "Nope", "config": {}}}, "solver="),
]


@pytest.mark.parametrize("kwargs, argument", SWEEP_CONSTRUCTOR_CASES, ids=[a for _, a in SWEEP_CONSTRUCTOR_CASES])
def test_constructor_rejects_what_the_sweep_found(kwargs, argument):
    assert_rejected(lambda: SDEBlock(**{"diffusion": "additive", **kwargs}), argument)


def test_numpy_training_flag_and_seed_arrive_as_tensors_and_are_still_checked():
    """Keras turns NumPy call arguments into tensors: np.bool_ training works, np.int64(-5) is still rejected."""
    block = built_block()
    np.testing.assert_array_equal(
        ops.convert_to_numpy(block(X, training=np.bool_(False))), ops.convert_to_numpy(block(X, training=False))
    )
    assert_rejected(lambda: block(X, noise_seed=np.int64(-5)), "noise_seed=", "-5")
    assert_rejected(lambda: block(X, noise_seed=np.array([1.0, 2.0])), "noise_seed=")
    assert_rejected(lambda: block(X, dW=[[0.0] * 6, [0.0] * 5]), "dW=")


class ConstantDiffusion(diffusions.Diffusion):
    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def call(self, h, t, f):
        return self.value(h) if callable(self.value) else self.value


class OneArgumentDiffusion(diffusions.Diffusion):
    def call(self, h):
        return h


class NarrowDerivative(diffusions.Diffusion):
    def call(self, h, t, f):
        return 0.2 * h

    def derivative(self, h, t, f):
        return ops.ones_like(h[:, :1])


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: ConstantDiffusion(0.5, name="constant"), "G=0.5"),
        (lambda: ConstantDiffusion(None, name="constant"), "G=None"),
        (lambda: ConstantDiffusion(lambda h: h * math.nan, name="constant"), "'constant' returned NaN or inf"),
        (lambda: NarrowDerivative(name="narrow"), "of shape (2, 1)"),
    ],
    ids=["float", "none", "nan", "derivative-shape"],
)
def test_call_rejects_a_diffusion_returning_what_the_solver_cannot_use(make, expected):
    block = SDEBlock(diffusion=make(), solver="milstein", num_steps=2)
    assert_rejected(lambda: block(X, training=True), expected)


def test_constructor_rejects_a_diffusion_whose_call_does_not_take_h_t_f():
    assert_rejected(lambda: SDEBlock(diffusion=OneArgumentDiffusion(name="one")), "diffusion='one'", "call(h)")


def drift_of_shape(make):
    return lambda h, t: make(h)


SWEEP_PURE_SOLVER_CASES = [
    ({"drift_fn": drift_of_shape(lambda h: -h[:, :1])}, "drift_fn returned a value of shape (2, 1)"),
    ({"drift_fn": drift_of_shape(lambda h: ops.stack([-h] * 4))}, "drift_fn returned a value of shape (4, 2, 3)"),
    ({"diffusion_fn": lambda h, t, f: ops.ones_like(h[0])}, "diffusion_fn returned a value of shape (3,)"),
    ({"drift_fn": 3}, "drift_fn=3"),
    ({"diffusion_fn": "ones"}, "diffusion_fn='ones'"),
    ({"return_trajectory": "yes"}, "return_trajectory='yes'"),
    ({"h0": np.ones((2, 3), "int32")}, "h0.dtype=int32"),
]


@pytest.mark.parametrize("solve", [solvers.euler_maruyama, solvers.milstein, solvers.reversible_heun])
@pytest.mark.parametrize(
    "kwargs, argument", SWEEP_PURE_SOLVER_CASES, ids=[str(i) for i in range(len(SWEEP_PURE_SOLVER_CASES))]
)
def test_pure_solvers_reject_fields_of_the_wrong_shape_or_kind(solve, kwargs, argument):
    arguments = {"drift_fn": identity_drift, "diffusion_fn": unit_diffusion, "h0": np.ones((2, 3), "float32"),
                 "dW": np.zeros((4, 2, 3), "float32"), **kwargs}
    assert_rejected(lambda: solve(**arguments), argument)


def solve_arguments(**kwargs):
    dW = np.zeros((4, 2, 3), "float32")
    return {"terms": solvers.SDETerms(identity_drift, unit_diffusion), "solver": "euler_maruyama",
            "path": brownian.GivenIncrements(dW), "h0": np.ones((2, 3), "float32"), "grid": solvers.Grid(0.0, 1.0, 4),
            **kwargs}


SOLVE_CASES = [
    ({"grid": (0, 1, 4)}, "grid=(0, 1, 4)"),
    ({"saveat": True}, "saveat=True"),
    ({"terms": identity_drift}, "terms="),
    ({"path": np.zeros((4, 2, 3), "float32")}, "path="),
    ({"path": brownian.GivenIncrements(np.zeros((3, 2, 3), "float32"))}, "num_steps=3"),
    ({"path": brownian.GivenIncrements(np.zeros((5, 2, 3), "float32"))}, "num_steps=5"),
    ({"path": brownian.GivenIncrements(np.zeros((4, 1, 3), "float32"))}, "shape (4, 1, 3)"),
    ({"h0": np.ones((2, 3), "int32")}, "h0.dtype=int32"),
]


@pytest.mark.parametrize("kwargs, argument", SOLVE_CASES, ids=[a for _, a in SOLVE_CASES])
def test_solve_rejects_a_problem_that_does_not_fit(kwargs, argument):
    assert_rejected(lambda: solvers.solve(**solve_arguments(**kwargs)), argument)


def test_solve_takes_numpy_states_and_saves_at_grid_times():
    """h0 as a NumPy array (it failed on PyTorch), the state at t = 0.5 equal to the closed form (1 - dt)^2."""
    ys = solvers.solve(**solve_arguments(saveat=solvers.SaveAt(times=[0.5]))).ys
    np.testing.assert_allclose(ops.convert_to_numpy(ys), np.full((1, 2, 3), 0.75**2), rtol=1e-6)


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: solvers.SaveAt(times=["a"]), "times=['a']"),
        (lambda: solvers.Grid.through(["a", "b"], 0.1), "times=['a', 'b']"),
        (lambda: solvers.Grid.through([0, 1], 1e-12), "max_step=1e-12"),
    ],
    ids=["saveat-strings", "through-strings", "through-too-many-steps"],
)
def test_times_and_steps_are_checked_before_any_allocation(make, argument):
    assert_rejected(make, argument)


def test_paper_classifier_rejects_bad_arguments_and_takes_names_in_any_case():
    from keras_nsde import models

    assert_rejected(lambda: models.paper_classifier(["digits"]), "dataset=['digits']")
    assert_rejected(lambda: models.paper_classifier("digits", "additive", filters=0), "filters=0")
    assert_rejected(lambda: models.paper_classifier("digits", "additive", filters="32"), "filters='32'")
    model = models.paper_classifier("digits", "ADDITIVE")
    assert model.get_layer("sde_block").diffusion.sigma == models.DEFAULT_SIGMA["digits"]["additive"]


def tiny_classifier():
    return keras.Sequential([
        keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(6),
        SDEBlock(diffusion="additive", sigma=0.3, num_steps=2, seed=1, name="sde_block"), keras.layers.Dense(3),
    ])


IMAGES = np.random.default_rng(1).uniform(size=(3, 4, 4, 1)).astype("float32")
LABELS = np.array([0, 1, 2])


def evaluation_cases():
    from keras_nsde import evaluation

    def pgd(**kwargs):
        return lambda model: evaluation.pgd_attack(**{"model": model, "x": IMAGES, "y": LABELS, "epsilon": 0.1,
                                                      "steps": 1, **kwargs})

    return [
        (lambda model: evaluation.ensemble_predict(model, np.zeros((0, 4, 4, 1), "float32"), samples=2),
         "x with shape (0, 4, 4, 1)"),
        (lambda model: evaluation.ensemble_predict(model, np.ones((3, 5, 5, 1), "float32"), samples=2),
         "x with shape (3, 5, 5, 1)"),
        (lambda model: evaluation.ensemble_predict(lambda x: x, IMAGES), "model="),
        (pgd(y=np.array([0, 1, 7])), "y=[0, 1, 7]"),
        (pgd(y=np.array([0, -1, 2])), "(values [0, -1, 2])"),
        (pgd(x=IMAGES * 255), "x with values in"),
        (lambda model: evaluation.noise_at_inference(model, enabled="no").__enter__(), "enabled='no'"),
        (lambda model: evaluation.accuracy(np.eye(3), [0, 1]), "labels with shape (2,)"),
        (lambda model: evaluation.statistics.bootstrap_interval(np.ones((2, 3)), level=1.5), "level=1.5"),
        (lambda model: evaluation.statistics.bootstrap_interval(np.ones((2, 3)), resamples=0), "resamples=0"),
        (lambda model: evaluation.perturbation_growth(model, IMAGES, IMAGES, block_name="nope"), "block_name='nope'"),
        (lambda model: evaluation.perturbation_growth(model, IMAGES, IMAGES[:2]), "x_perturbed with shape (2, 4, 4, 1)"),
        (lambda model: evaluation.perturbation_growth(model, IMAGES, IMAGES, noise="yes"), "noise='yes'"),
    ]


@pytest.mark.parametrize("index", range(13))
def test_evaluation_rejects_bad_arguments(index):
    make, argument = evaluation_cases()[index]
    model = tiny_classifier()
    assert_rejected(lambda: make(model), argument)


def test_perturbation_growth_of_a_fresh_sequential_model():
    """It failed on a Sequential model never called (no `model.input`); the noiseless growth of a linear
    stem's perturbation through a block equals the block's own trajectories' difference."""
    from keras_nsde import evaluation

    model = tiny_classifier()
    times, norms = evaluation.perturbation_growth(model, IMAGES, IMAGES + 0.01, noise=False)
    block, stem = model.get_layer("sde_block"), keras.Sequential(model.layers[:2])
    difference = block.trajectory(stem(IMAGES + 0.01)) - block.trajectory(stem(IMAGES))
    expected = np.linalg.norm(ops.convert_to_numpy(difference), axis=-1).mean(axis=1)
    np.testing.assert_allclose(times, np.linspace(0.0, 1.0, 3))
    np.testing.assert_allclose(norms, expected, rtol=1e-5)


def test_callback_and_data_loaders_reject_bad_arguments():
    from keras_nsde import data

    assert_rejected(lambda: callbacks.StopOnNonFiniteLoss(hint=5), "hint=5")
    for kwargs, argument in [({"limit": -1}, "limit=-1"), ({"limit": 2.5}, "limit=2.5"), ({"augment": "yes"}, "augment='yes'"),
                             ({"shuffle": "no"}, "shuffle='no'"), ({"seed": "x"}, "seed='x'"),
                             ({"split": "validation"}, "split='validation'")]:
        assert_rejected(lambda: data.load(**{"dataset": "digits", "split": "train", **kwargs}), argument)
    assert_rejected(lambda: data.load_corrupted("gaussian_noise", 2.5), "level=2.5")
    assert_rejected(lambda: data.load_corrupted("gaussian_noise", 3, batch_size=0), "batch_size=0")
    assert_rejected(lambda: data.load_corrupted("gaussian_noise", 3, limit=-1), "limit=-1")


def test_image_folder_source_names_a_missing_data_dir():
    pytest.importorskip("tensorflow")
    from keras_nsde import data

    assert_rejected(lambda: data.load("tiny_imagenet", "train", data_dir="/nonexistent"), "data_dir='/nonexistent'")


LAYER_CASES = [
    (lambda: keras_nsde_layers().GroupNorm(0), "groups=0"),
    (lambda: keras_nsde_layers().GroupNorm("2"), "groups='2'"),
    (lambda: keras_nsde_layers().GroupNorm(2, epsilon=-1.0), "epsilon=-1.0"),
    (lambda: keras_nsde_layers().MLPDrift(6, hidden_layers=-1), "hidden_layers=-1"),
    (lambda: keras_nsde_layers().MLPDrift(6, hidden_units=2.5), "hidden_units=2.5"),
    (lambda: keras_nsde_layers().ConvDrift(4, num_convs=-1), "num_convs=-1"),
    (lambda: keras_nsde_layers().ConvDrift(4, groups=0), "groups=0"),
    (lambda: SDEBlock(drift=keras_nsde_layers().ConvDrift(3), num_steps=2)(np.ones((1, 4, 4, 4), "float32")), "filters=3"),
]


def keras_nsde_layers():
    from keras_nsde import layers

    return layers


@pytest.mark.parametrize("make, argument", LAYER_CASES, ids=[a for _, a in LAYER_CASES])
def test_layers_reject_bad_arguments(make, argument):
    assert_rejected(make, argument)


def test_time_conv_takes_numpy_ints():
    assert keras_nsde_layers().TimeConv2D(np.int64(4), kernel_size=np.int32(3)).filters == 4


def test_analysis_rejects_bad_arguments_and_builds_an_unbuilt_block():
    from keras_nsde import analysis

    block = SDEBlock(diffusion="multiplicative", sigma=0.5, num_steps=3)
    assert_rejected(lambda: analysis.lyapunov_exponent(keras.layers.Dense(6), X), "block=")
    assert_rejected(lambda: analysis.lyapunov_exponent(block, X, noise="yes"), "noise='yes'")
    assert_rejected(lambda: analysis.lyapunov_exponent(block, X, noise_seed=-1), "noise_seed=-1")
    assert_rejected(lambda: analysis.lyapunov_exponent(block, X, noise_seed=1.5), "noise_seed=1.5")
    assert_rejected(lambda: analysis.stability_bound(block, "x"), "lipschitz='x'")
    assert_rejected(lambda: analysis.stability_bound(block, -1.0), "lipschitz=-1.0")
    block(X)
    assert_rejected(lambda: analysis.lyapunov_exponent(block, np.ones((2, 5), "float32")), "h0 with shape (2, 5)")
    assert np.isfinite(analysis.lyapunov_exponent(SDEBlock(num_steps=2), X))  # built on h0


def test_inputs_as_nested_lists_are_an_array_and_other_lists_a_clear_error():
    block = built_block()
    np.testing.assert_allclose(
        ops.convert_to_numpy(block(X.tolist(), noise_seed=2)), ops.convert_to_numpy(block(X, noise_seed=2)), rtol=1e-6
    )
    assert_rejected(lambda: block([X, X]), "inputs=list")
    assert_rejected(lambda: block([[0.0] * 6, [0.0] * 5]), "inputs=list")
