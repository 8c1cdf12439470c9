"""A new user's sweep of bad and edge inputs over keras_nsde's public API, on the current Keras backend.

    KERAS_BACKEND=torch PYTHONPATH=. python3 benchmarks/bad_input_sweep.py [--only GROUP] [-k NAME] [--verbose]

Not a test: a table of (case, backend, outcome) and the counts per outcome,
to judge issue 20's criterion ("no crash, no silently wrong result, at most 5
unclear errors") independently of tests/test_bad_inputs.py. Each case is
one call with one bad (or edge) argument and what a user would expect:

    expect="error"   a bad input: a ValueError/TypeError naming the argument
    expect="ok"      a valid (edge) input: it runs and, where a check is given, the result is right
    expect="either"  an edge input where a clear error or a right result are both fine

Outcomes:
    clear       a ValueError/TypeError whose message names the argument and the value received
    unclear     an error that does not (another type, or a message without the argument or value)
    silent      a bad input accepted without a word, or a valid input giving a wrong result
    crash       a valid input raising, or any case running past its time limit
    fine        a valid input giving the right result
"""

import argparse
import json
import math
import os
import signal
import tempfile
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_nsde import SDEBlock, brownian, callbacks, diffusions, evaluation, gradients, models, solvers  # noqa: E402

BACKEND = keras.backend.backend()
X = np.random.default_rng(0).normal(size=(2, 6)).astype("float32")
TIME_LIMIT_S = 60
CASES = []


def case(group, name, call, expect="error", argument=None, value=None, check=None):
    """One case: call() with a bad or edge input; `argument` (and `value`) must appear in a clear error.

    `expect` may be left out of a bad input's case: case(group, name, call, argument, value).
    """
    if expect not in ("error", "ok", "either"):
        expect, argument, value = "error", expect, argument
    CASES.append(dict(group=group, name=name, call=call, expect=expect, argument=argument, value=value, check=check))


def numpy(x):
    return ops.convert_to_numpy(x)


def block(**kwargs):
    b = SDEBlock(**{"num_steps": 4, "diffusion": "additive", "sigma": 0.3, **kwargs})
    b.build((None, 6))
    return b


def same(a, b, tol=1e-6):
    return np.allclose(numpy(a), numpy(b), rtol=tol, atol=tol)


# ---------------------------------------------------------------- SDEBlock constructor
def constructor(name, expect="error", argument=None, value=None, check=None, **kwargs):
    case("ctor", name, lambda: SDEBlock(**{"diffusion": "additive", **kwargs}), expect, argument, value, check)


constructor("num_steps=np.float64(4.0)", "num_steps", "4.0", num_steps=np.float64(4.0))
constructor("num_steps=[4]", "num_steps", "[4]", num_steps=[4])
constructor("num_steps=np.int64(4)", "ok", check=lambda b: b.num_steps == 4 and type(b.num_steps) is int,
            num_steps=np.int64(4))
constructor("num_steps=2**31 (past an int32 step counter)", "num_steps", "2147483648", num_steps=2**31)
constructor("num_steps=10**6", "ok", check=lambda b: b.num_steps == 10**6, num_steps=10**6)
constructor("t0=-inf", "t0", "-inf", t0=-math.inf)
constructor("t0=np.float32(nan)", "t0", "nan", t0=np.float32("nan"))
constructor("t0=1+0j", "t0", "(1+0j)", t0=1 + 0j)
constructor("t0=t1=1.0", "t1", "1.0", t0=1.0, t1=1.0)
constructor("t1='inf'", "t1", "'inf'", t1="inf")
constructor("t1=np.array(1.0)", "either", "t1", check=lambda b: b.t1 == 1.0, t1=np.array(1.0))
constructor("t1=Decimal-like np.float16(0.5)", "ok", check=lambda b: b.t1 == 0.5, t1=np.float16(0.5))
constructor("t0=-1,t1=-0.5", "ok", check=lambda b: abs(b.dt - 0.125) < 1e-12, t0=-1.0, t1=-0.5, num_steps=4)
constructor("sigma=np.float64(nan)", "sigma", "nan", sigma=np.float64("nan"))
constructor("sigma=1j", "sigma", "1j", sigma=1j)
constructor("sigma=None additive", "ok", check=lambda b: b.diffusion.sigma == 0.1, sigma=None)
constructor("sigma=0.3 + Additive()", "sigma", "0.3", sigma=0.3, diffusion=diffusions.Additive())
constructor("sigma=0.3 + config dict", "sigma", "0.3", sigma=0.3,
            diffusion=diffusions.serialize(diffusions.Additive()))
constructor("sigma=np.array([0.5])", "sigma", "0.5", sigma=np.array([0.5]))
constructor("diffusion='ADDITIVE'", "ok", check=lambda b: isinstance(b.diffusion, diffusions.Additive),
            diffusion="ADDITIVE")
constructor("diffusion=''", "diffusion", "''", diffusion="")
constructor("diffusion=None", "ok", check=lambda b: not b.diffusion.is_noisy, diffusion=None)
constructor("diffusion=Additive (class)", "diffusion", "Additive", diffusion=diffusions.Additive)
constructor("diffusion=Dense layer", "diffusion", "Dense", diffusion=keras.layers.Dense(3))
constructor("diffusion={'class_name': 'Foo'}", "diffusion", "Foo", diffusion={"class_name": "Foo", "config": {}})
constructor("diffusion=['additive']", "diffusion", "['additive']", diffusion=["additive"])
constructor("solver=None", "solver", "None", solver=None)
constructor("solver='Milstein'", "ok", check=lambda b: isinstance(b.solver, solvers.Milstein), solver="Milstein")
constructor("solver=EulerMaruyama (class)", "solver", "EulerMaruyama", solver=solvers.EulerMaruyama)
constructor("solver='dopri5' + additive", "diffusion", "Additive", solver="dopri5")
constructor("solver={'class_name': 'Nope'}", "solver", "Nope", solver={"class_name": "Nope", "config": {}})
constructor("gradient=None", "gradient", "None", gradient=None)
constructor("gradient='reversible' solver='milstein'", "solver", "Milstein", gradient="reversible",
            solver="milstein")
constructor("gradient=Pathwise (class)", "gradient", "Pathwise", gradient=gradients.Pathwise)
constructor("gradient=Pathwise(checkpoints=100) num_steps=4", "either", "checkpoints",
            gradient=gradients.Pathwise(checkpoints=100), num_steps=4)
constructor("increments=None", "increments", "None", increments=None)
constructor("increments=Bernoulli (class)", "increments", "Bernoulli", increments=brownian.Bernoulli)
constructor("increments='Bernoulli'", "ok", check=lambda b: isinstance(b.increments, brownian.Bernoulli),
            increments="Bernoulli")
constructor("drift=lambda", "drift", "lambda", drift=lambda h: h)
constructor("drift='dense'", "drift", "'dense'", drift="dense")
constructor("test_time_noise=np.bool_(True)", "ok", check=lambda b: b.test_time_noise is True,
            test_time_noise=np.bool_(True))
constructor("test_time_noise='True'", "test_time_noise", "'True'", test_time_noise="True")
constructor("return_trajectory=None", "return_trajectory", "None", return_trajectory=None)
constructor("return_trajectory=1.0", "return_trajectory", "1.0", return_trajectory=1.0)
constructor("seed=np.int64(5)", "ok", check=lambda b: b.seed == 5, seed=np.int64(5))
constructor("seed=2**31-1", "ok", check=lambda b: b.seed == 2**31 - 1, seed=2**31 - 1)
constructor("seed=2**31", "seed", "2147483648", seed=2**31)
constructor("seed=np.uint64(2**63)", "seed", "9223372036854775808", seed=np.uint64(2**63))
constructor("seed=[1, 2]", "seed", "[1, 2]", seed=[1, 2])
constructor("seed=5.0", "seed", "5.0", seed=5.0)
constructor("rtol=1e-3 (moved)", "rtol", "0.001", rtol=1e-3)
constructor("keep_prob=0.5 (moved)", "keep_prob", "0.5", keep_prob=0.5)
constructor("unknown kwarg foo=1", "foo", None, foo=1)
constructor("dtype='int32'", "dtype", "int32", dtype="int32")
constructor("dtype='float17'", "dtype", "float17", dtype="float17")


# ---------------------------------------------------------------- SDEBlock call
def call(name, kwargs, expect="error", argument=None, value=None, check=None, inputs=X, make=block):
    case("call", name, lambda: make()(inputs, **kwargs), expect, argument, value, check)


call("training=np.bool_(True)", {"training": np.bool_(True)}, "ok", check=lambda y: y.shape == (2, 6))
call("training=None", {"training": None}, "ok",
     check=lambda y: same(y, block()(X, training=False)) or True)
call("training=0.0", {"training": 0.0}, "training", "0.0")
call("training=[True]", {"training": [True]}, "training", "[True]")
call("noise_seed=np.uint32(5) same path as 5", {"noise_seed": np.uint32(5)}, "ok",
     check=lambda y: same(y, SEEDED_BLOCK(X, noise_seed=5)), make=lambda: SEEDED_BLOCK)
call("noise_seed=np.array([[1, 2]])", {"noise_seed": np.array([[1, 2]])}, "noise_seed", "[[1, 2]]")
call("noise_seed=float tensor", {"noise_seed": ops.convert_to_tensor([1.0, 2.0])}, "noise_seed", None)
call("noise_seed=int tensor shape (3,)", {"noise_seed": ops.convert_to_tensor([1, 2, 3], "int32")}, "noise_seed",
     "(3,)")
call("noise_seed=np.int64(-5)", {"noise_seed": np.int64(-5)}, "noise_seed", "-5")
call("noise_seed=[]", {"noise_seed": []}, "noise_seed", "[]")
call("noise_seed=(1, -2)", {"noise_seed": (1, -2)}, "noise_seed", "-2")
call("noise_seed=np.array([1, 2], float)", {"noise_seed": np.array([1.0, 2.0])}, "noise_seed", None)
call("noise_seed=None training=False", {"noise_seed": None, "training": False}, "ok",
     check=lambda y: same(y, SEEDED_BLOCK(X, training=False)), make=lambda: SEEDED_BLOCK)
call("noise_seed=3 with training=False (noise on)", {"noise_seed": 3, "training": False}, "ok",
     check=lambda y: not same(y, SEEDED_BLOCK(X, training=False)), make=lambda: SEEDED_BLOCK)
call("dW=int zeros", {"dW": np.zeros((4, 2, 6), "int32")}, "ok",
     check=lambda y: same(y, SEEDED_BLOCK(X, training=False)), make=lambda: SEEDED_BLOCK)
call("dW=float64 zeros", {"dW": np.zeros((4, 2, 6), "float64")}, "ok",
     check=lambda y: same(y, SEEDED_BLOCK(X, training=False)) and y.dtype == SEEDED_BLOCK(X).dtype,
     make=lambda: SEEDED_BLOCK)
call("dW='zeros'", {"dW": "zeros"}, "dW", "'zeros'")
call("dW of 0 steps", {"dW": np.zeros((0, 2, 6), "float32")}, "dW", "(0, 2, 6)")
call("dW=0.0 scalar", {"dW": 0.0}, "dW", "()")
call("dW ragged list", {"dW": [[0.0] * 6, [0.0] * 5]}, "dW", None)
call("dW=(4, 2, 6) bool", {"dW": np.zeros((4, 2, 6), bool)}, "either", "dW",
     check=lambda y: same(y, SEEDED_BLOCK(X, training=False)), make=lambda: SEEDED_BLOCK)
call("dW=(4, 2, 1) broadcastable", {"dW": np.zeros((4, 2, 1), "float32")}, "dW", "(4, 2, 1)")
call("dW=(4, 1, 6) broadcastable", {"dW": np.zeros((4, 1, 6), "float32")}, "dW", "(4, 1, 6)")
call("inputs 1-D (6,)", {}, "ndim", "(6,)", inputs=np.ones(6, "float32"))
call("inputs int64", {}, "inputs", "int64", inputs=np.ones((2, 6), "int64"))
call("inputs bool", {}, "inputs", "bool", inputs=np.ones((2, 6), bool))
call("inputs float16 into float32 block", {}, "ok", check=lambda y: keras.backend.standardize_dtype(y.dtype) == "float32",
     inputs=X.astype("float16"))
call("inputs float64 into float32 block", {}, "ok",
     check=lambda y: keras.backend.standardize_dtype(y.dtype) == "float32", inputs=X.astype("float64"))
call("inputs batch of 0", {"training": True}, "ok", check=lambda y: tuple(y.shape) == (0, 6),
     inputs=np.zeros((0, 6), "float32"))
call("inputs batch of 1 odd size", {"training": True}, "ok", check=lambda y: tuple(y.shape) == (1, 3),
     inputs=np.ones((1, 3), "float32"), make=lambda: SDEBlock(diffusion="additive", num_steps=2))
call("inputs 3-D with default drift", {}, "input_shape", "(2, 3, 4)", inputs=np.ones((2, 3, 4), "float32"),
     make=lambda: SDEBlock(diffusion="additive", num_steps=2))
call("inputs 5-D with default drift", {}, "input_shape", None, inputs=np.ones((1, 2, 2, 2, 2), "float32"),
     make=lambda: SDEBlock(diffusion="additive", num_steps=2))
call("inputs python list", {}, "either", "inputs", check=lambda y: same(y, SEEDED_BLOCK(X)), inputs=X.tolist(),
     make=lambda: SEEDED_BLOCK)
call("inputs with inf first call", {}, "either", "inputs", inputs=np.full((2, 6), np.inf, "float32"),
     check=lambda y: True, make=lambda: SDEBlock(diffusion="additive", num_steps=2))


def varying_spatial_size():
    b = SDEBlock(diffusion="additive", num_steps=2)
    b(np.ones((1, 4, 4, 2), "float32"))
    return b(np.ones((1, 5, 5, 2), "float32"))


case("call", "4-D spatial size changes after build", varying_spatial_size, "ok",
     check=lambda y: tuple(y.shape) == (1, 5, 5, 2))


def return_trajectory_shape():
    return SDEBlock(diffusion="additive", num_steps=3, return_trajectory=True)(X, training=True)


case("call", "return_trajectory shape", return_trajectory_shape, "ok", check=lambda y: tuple(y.shape) == (2, 4, 6))


def float64_block():
    return SDEBlock(diffusion="additive", num_steps=2, dtype="float64")(X.astype("float64"), training=True)


case("call", "dtype=float64 block", float64_block, "ok" if BACKEND != "jax" else "error", argument="dtype",
     value="float64", check=lambda y: keras.backend.standardize_dtype(y.dtype) == "float64")


def float16_block():
    return SDEBlock(diffusion="multiplicative", num_steps=2, dtype="float16")(X, training=True)


case("call", "dtype=float16 block", float16_block, "either", "dtype",
     check=lambda y: keras.backend.standardize_dtype(y.dtype) == "float16" and np.all(np.isfinite(numpy(y))))


def mixed_precision_block():
    return SDEBlock(diffusion="additive", num_steps=2, dtype="mixed_float16")(X, training=True)


case("call", "dtype=mixed_float16 block", mixed_precision_block, "either", "dtype",
     check=lambda y: np.all(np.isfinite(numpy(y))))


def nearby_seeds_independent():
    a, b = SDEBlock(diffusion="additive", seed=5, num_steps=2), SDEBlock(diffusion="additive", seed=6, num_steps=2)
    a.build((None, 6)); b.build((None, 6))
    b.set_weights(a.get_weights())
    x = np.zeros((64, 6), "float32")
    noiseless = numpy(a(x, training=False))  # the same for both: the noise is what must differ
    outs_a = [numpy(a(x, training=True)) - noiseless for _ in range(3)]
    outs_b = [numpy(b(x, training=True)) - noiseless for _ in range(3)]
    return [np.corrcoef(p.ravel(), q.ravel())[0, 1] for p in outs_a for q in outs_b]


case("call", "seeds 5 and 6: independent paths over 3 calls", nearby_seeds_independent, "ok",
     check=lambda c: max(abs(v) for v in c) < 0.2)


def torch_reversible_additive_train():
    model = keras.Sequential([keras.Input((6,)), SDEBlock(diffusion="additive", solver="reversible_heun",
                                                          gradient="reversible", num_steps=3), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model.train_on_batch(X, np.ones((2, 1), "float32"))


case("call", "additive + reversible_heun + reversible train_on_batch", torch_reversible_additive_train, "ok",
     check=lambda loss: np.isfinite(np.asarray(loss)).all())


# ---------------------------------------------------------------- custom diffusions and drifts
def custom_diffusion(fn, **kwargs):
    class Custom(diffusions.Diffusion):
        def call(self, h, t, f):
            return fn(h, t, f)

    return SDEBlock(drift=kwargs.pop("drift", None), diffusion=Custom(name="custom"), num_steps=2, **kwargs)


def diffusion_case(name, fn, expect="error", argument="custom", value=None, check=None, **kwargs):
    case("diffusion", name, lambda: custom_diffusion(fn, **kwargs)(X, training=True), expect, argument, value, check)


diffusion_case("returns int32", lambda h, t, f: ops.ones_like(h, dtype="int32"), "ok",
               check=lambda y: keras.backend.standardize_dtype(y.dtype) == "float32")
diffusion_case("returns float64", lambda h, t, f: ops.cast(ops.ones_like(h), "float64"), "ok",
               check=lambda y: keras.backend.standardize_dtype(y.dtype) == "float32")
diffusion_case("returns python float", lambda h, t, f: 0.5, "either", "custom",
               check=lambda y: tuple(y.shape) == (2, 6))
diffusion_case("returns None", lambda h, t, f: None, value="None")
diffusion_case("returns a tuple", lambda h, t, f: (h, h))
diffusion_case("returns (1, 6) broadcasting", lambda h, t, f: ops.ones_like(h[:1]), value="(1, 6)")
diffusion_case("returns (2, 6, 1)", lambda h, t, f: ops.expand_dims(h, -1), value="(2, 6, 1)")
diffusion_case("returns (6,)", lambda h, t, f: ops.ones_like(h[0]), value="(6,)")
diffusion_case("returns NaN", lambda h, t, f: h * np.nan, "error", "custom", "NaN")
diffusion_case("returns a string", lambda h, t, f: "sigma")


class NoCall(diffusions.Diffusion):
    pass


class WrongSignature(diffusions.Diffusion):
    def call(self, h):
        return h


case("diffusion", "subclass without call", lambda: SDEBlock(diffusion=NoCall(), num_steps=2)(X, training=True),
     "error", "call(h, t, f)")
case("diffusion", "subclass call(h) only", lambda: SDEBlock(diffusion=WrongSignature(), num_steps=2)(X, training=True),
     "error", "diffusion", "call(h)")


class BadDerivative(diffusions.Diffusion):
    def call(self, h, t, f):
        return 0.2 * h

    def derivative(self, h, t, f):
        return ops.ones_like(h[:, :1])


case("diffusion", "derivative of wrong shape with milstein",
     lambda: SDEBlock(diffusion=BadDerivative(name="bad_derivative"), solver="milstein", num_steps=2)(X, training=True),
     "error", "derivative", "(2, 1)")


class ZeroDrift(keras.layers.Layer):
    def call(self, h):
        return ops.zeros_like(h)


class DoublingDrift(keras.layers.Layer):
    def call(self, h):
        return 2.0 * h


class WideDrift(keras.layers.Layer):
    def call(self, h):
        return ops.concatenate([h, h], axis=-1)


class Float64Drift(keras.layers.Layer):
    def call(self, h):
        return ops.cast(-h, "float64")


case("diffusion", "drift=Dense(5) for 6 features", lambda: SDEBlock(drift=keras.layers.Dense(5), num_steps=2)(X),
     "error", "drift", "(None, 5)")
case("diffusion", "drift doubling the width", lambda: SDEBlock(drift=WideDrift(), num_steps=2)(X), "error", "drift",
     "12")
case("diffusion", "drift returning float64", lambda: SDEBlock(drift=Float64Drift(), num_steps=2)(X), "ok",
     check=lambda y: keras.backend.standardize_dtype(y.dtype) == "float32"
     and np.allclose(numpy(y), X * 0.5**2, rtol=1e-5))
case("diffusion", "drift=Sequential", lambda: SDEBlock(drift=keras.Sequential([keras.layers.Dense(6)]), num_steps=2)(X),
     "ok", check=lambda y: tuple(y.shape) == (2, 6))


# ---------------------------------------------------------------- pure solvers
def drift(h, t):
    return -h


def unit(h, t, f):
    return ops.ones_like(h)


H0 = np.ones((2, 3), "float32")
DW = np.zeros((4, 2, 3), "float32")


def pure(name, expect="error", argument=None, value=None, check=None, solve=solvers.euler_maruyama, **kwargs):
    arguments = {"drift_fn": drift, "diffusion_fn": unit, "h0": H0, "dW": DW, **kwargs}
    case("solvers", f"{solve.__name__}: {name}", lambda: solve(**arguments), expect, argument, value, check)


pure("h0 int32", "h0", "int32", h0=np.ones((2, 3), "int32"))
pure("h0 python list", "ok", check=lambda y: np.allclose(numpy(y), 0.75**4), h0=[[1.0] * 3] * 2)
pure("dW nested list", "ok", check=lambda y: np.allclose(numpy(y), 0.75**4), dW=DW.tolist())
pure("dW int", "ok", check=lambda y: np.allclose(numpy(y), 0.75**4), dW=DW.astype("int32"))
pure("drift_fn returns (2, 1)", "drift_fn", "(2, 1)", drift_fn=lambda h, t: -h[:, :1])
pure("drift_fn returns (4, 2, 3)", "drift_fn", "(4, 2, 3)", drift_fn=lambda h, t: ops.stack([-h] * 4))
pure("diffusion_fn returns (3,)", "diffusion_fn", "(3,)", diffusion_fn=lambda h, t, f: ops.ones_like(h[0]))
pure("drift_fn returns (2, 1), milstein", "drift_fn", "(2, 1)", solve=solvers.milstein,
     drift_fn=lambda h, t: -h[:, :1])
pure("diffusion_fn returns (3,), reversible_heun", "diffusion_fn", "(3,)", solve=solvers.reversible_heun,
     diffusion_fn=lambda h, t, f: ops.ones_like(h[0]))
pure("drift_fn=3", "drift_fn", "3", drift_fn=3)
pure("diffusion_fn='ones'", "diffusion_fn", "'ones'", diffusion_fn="ones")
pure("return_trajectory='yes'", "return_trajectory", "'yes'", return_trajectory="yes")
pure("t0=t1", "t1", "1.0", t0=1.0, t1=1.0)
pure("num_steps=np.int64(4) with dW", "ok", check=lambda y: np.allclose(numpy(y), 0.75**4), num_steps=np.int64(4))
pure("dW=None num_steps=4 ODE", "ok", check=lambda y: np.allclose(numpy(y), 0.75**4), dW=None, diffusion_fn=None,
     num_steps=4)
pure("dW with NaN", "either", "dW", check=lambda y: not np.all(np.isfinite(numpy(y))), dW=DW * np.nan)

TERMS = solvers.SDETerms(drift, unit)


def solve_case(name, expect="error", argument=None, value=None, check=None, **kwargs):
    arguments = {"terms": TERMS, "solver": "euler_maruyama", "path": brownian.GivenIncrements(DW), "h0": H0,
                 "grid": solvers.Grid(0.0, 1.0, 4), **kwargs}
    case("solvers", f"solve: {name}", lambda: solvers.solve(**arguments), expect, argument, value, check)


solve_case("grid=(0, 1, 4) tuple", "grid", "(0, 1, 4)", grid=(0, 1, 4))
solve_case("solver='foo'", "solver", "'foo'", solver="foo")
solve_case("gradient='foo'", "gradient", "'foo'", gradient="foo")
solve_case("saveat=True", "saveat", "True", saveat=True)
solve_case("terms=drift function", "terms", None, terms=drift)
solve_case("path of 3 steps on a 4-step grid", "path", "3", path=brownian.GivenIncrements(DW[:3]))
solve_case("path of 5 steps on a 4-step grid", "path", "5", path=brownian.GivenIncrements(np.zeros((5, 2, 3), "float32")))
solve_case("path with shape (4, 1, 3)", "path", "(4, 1, 3)", path=brownian.GivenIncrements(DW[:, :1]))
solve_case("path=np array", "path", None, path=DW)
solve_case("h0 int", "h0", "int32", h0=np.ones((2, 3), "int32"))
solve_case("SaveAt(times=[0.5]) on grid", "ok", check=lambda s: tuple(s.ys.shape) == (1, 2, 3),
           saveat=solvers.SaveAt(times=[0.5]))
solve_case("SaveAt(times=[0.3]) off grid", "times", "0.3", saveat=solvers.SaveAt(times=[0.3]))
solve_case("SaveAt(times=[1.5]) past t1", "times", "1.5", saveat=solvers.SaveAt(times=[1.5]))
solve_case("SaveAt(times=[-0.5]) before t0", "times", "-0.5", saveat=solvers.SaveAt(times=[-0.5]))
solve_case("reversible gradient, euler", "gradient", None, gradient="reversible")
solve_case("dopri5 with a path", "either", "path", solver="dopri5")

case("solvers", "SaveAt(steps=1)", lambda: solvers.SaveAt(steps=1), "error", "steps", "1")
case("solvers", "SaveAt(times=[[0.1]])", lambda: solvers.SaveAt(times=[[0.1]]), "error", "times", None)
case("solvers", "SaveAt(times='0.5')", lambda: solvers.SaveAt(times="0.5"), "error", "times", "0.5")
case("solvers", "SaveAt(times=[])", lambda: solvers.SaveAt(times=[]), "error", "times", "[]")
case("solvers", "SaveAt(times=['a'])", lambda: solvers.SaveAt(times=["a"]), "error", "times", "'a'")
case("solvers", "SaveAt(times=[0.5, 0.2])", lambda: solvers.SaveAt(times=[0.5, 0.2]), "error", "times", "0.2")
case("solvers", "SaveAt(times=None)", lambda: solvers.SaveAt(times=None), "ok", check=lambda s: s.times is None)
case("solvers", "Grid.through max_step=0", lambda: solvers.Grid.through([0, 1], 0), "error", "max_step", "0")
case("solvers", "Grid.through repeated time", lambda: solvers.Grid.through([0, 0.5, 0.5, 1], 0.1), "error", "times",
     "0.5")
case("solvers", "Grid.through decreasing", lambda: solvers.Grid.through([1, 0], 0.1), "error", "times", "[1.0, 0.0]")
case("solvers", "Grid.through nan", lambda: solvers.Grid.through([0, np.nan], 0.1), "error", "times", "nan")
case("solvers", "Grid.through inf", lambda: solvers.Grid.through([0, np.inf], 0.1), "error", "times", "inf")
case("solvers", "Grid.through times=5", lambda: solvers.Grid.through(5, 0.1), "error", "times", "5")
case("solvers", "Grid.through ['a', 'b']", lambda: solvers.Grid.through(["a", "b"], 0.1), "error", "times", "'a'")
case("solvers", "Grid.through max_step='0.1'", lambda: solvers.Grid.through([0, 1], "0.1"), "error", "max_step",
     "'0.1'")
case("solvers", "Grid.through max_step=5 (one step)", lambda: solvers.Grid.through([0, 1], 5), "ok",
     check=lambda g: g.num_steps == 1)
case("solvers", "Grid.through max_step=1e-12 (10**12 steps)", lambda: solvers.Grid.through([0, 1], 1e-12), "error",
     "max_step", "1e-12")
case("solvers", "Grid.through 2-D times", lambda: solvers.Grid.through([[0, 1]], 0.1), "error", "times", None)
case("solvers", "Grid.through irregular", lambda: solvers.Grid.through([0.0, 0.3, 0.35, 1.0], 0.1), "ok",
     check=lambda g: np.allclose(g.time_points()[[0, 3, 4, -1]], [0.0, 0.3, 0.35, 1.0]))
case("solvers", "Grid(0, 1, np.int32(3))", lambda: solvers.Grid(0, 1, np.int32(3)), "ok",
     check=lambda g: g.num_steps == 3)
case("solvers", "Dopri5(rtol=-1)", lambda: solvers.Dopri5(rtol=-1), "error", "rtol", "-1")
case("solvers", "Dopri5(atol='1e-6')", lambda: solvers.Dopri5(atol="1e-6"), "error", "atol", "'1e-6'")
case("solvers", "ReversibleHeun(None)", lambda: solvers.ReversibleHeun(None), "error", "interpretation", "None")
case("solvers", "ReversibleHeun('ITO')", lambda: solvers.ReversibleHeun("ITO"), "either", "interpretation",
     check=lambda s: s.interpretation == "ito")
case("solvers", "solvers.get(3)", lambda: solvers.get(3), "error", "solver", "3")
case("solvers", "GivenIncrements(0.0)", lambda: brownian.GivenIncrements(0.0), "error", "dW", "()")


# ---------------------------------------------------------------- Brownian increments
for bad in (-0.1, 1.5, math.inf, None, [0.5], np.float64("nan"), True):
    case("brownian", f"Bernoulli(keep_prob={bad!r})", lambda bad=bad: brownian.Bernoulli(keep_prob=bad), "error",
         "keep_prob", repr(bad) if bad is not None else "None")
case("brownian", "Bernoulli(keep_prob=np.float32(0.5))", lambda: brownian.Bernoulli(np.float32(0.5)), "ok",
     check=lambda b: b.keep_prob == 0.5)
case("brownian", "get('Gaussian')", lambda: brownian.get("Gaussian"), "ok",
     check=lambda g: isinstance(g, brownian.Gaussian))
case("brownian", "get(3)", lambda: brownian.get(3), "error", "increments", "3")
case("brownian", "as_seed(np.array([1, 2], float))", lambda: brownian.as_seed(np.array([1.0, 2.0])), "error",
     "noise_seed", None)


def bernoulli_moments():
    path = brownian.Bernoulli(0.8).path(np.array([1, 0], "int32"), (20000,), "float32", 2, 0.25)
    dW = numpy(path.increment(0))
    return dW.mean(), dW.var()


case("brownian", "Bernoulli(0.8) increments: mean 0, variance dt", bernoulli_moments, "ok",
     check=lambda mv: abs(mv[0]) < 0.02 and abs(mv[1] - 0.25) < 0.02)


# ---------------------------------------------------------------- models.paper_classifier
def classifier(name, expect="error", argument=None, value=None, check=None, *args, **kwargs):
    case("models", f"paper_classifier({name})", lambda: models.paper_classifier(*args, **kwargs), expect, argument,
         value, check)


classifier("'CIFAR10'", "error", "dataset", "'CIFAR10'", None, "CIFAR10")
classifier("None", "error", "dataset", "None", None, None)
classifier("['digits']", "error", "dataset", "['digits']", None, ["digits"])
classifier("diffusion='brownian'", "error", "diffusion", "'brownian'", None, "digits", "brownian")
classifier("sigma=-1", "error", "sigma", "-1", None, "digits", "additive", -1.0)
classifier("filters=0", "error", "filters", "0", None, "digits", "additive", filters=0)
classifier("filters=-3", "error", "filters", "-3", None, "digits", "additive", filters=-3)
classifier("filters=2.5", "error", "filters", "2.5", None, "digits", "additive", filters=2.5)
classifier("filters='32'", "error", "filters", "'32'", None, "digits", "additive", filters="32")
classifier("num_steps=0", "error", "num_steps", "0", None, "digits", "additive", num_steps=0)
classifier("foo=1", "error", "foo", None, None, "digits", "additive", foo=1)
classifier("'none' with sigma=0.5", "error", "sigma", "0.5", None, "digits", "none", 0.5)
classifier("diffusion=None", "ok", None, None, lambda m: m.count_params() > 0, "digits", None)
classifier("diffusion=Additive()", "ok", None, None, lambda m: m.get_layer("sde_block").diffusion.sigma == 0.1,
           "digits", diffusions.Additive())
classifier("filters=8", "ok", None, None, lambda m: m.get_layer("sde_block").output.shape[-1] == 8, "digits",
           "additive", filters=8)
classifier("diffusion='ADDITIVE' takes the dataset sigma", "ok", None, None,
           lambda m: m.get_layer("sde_block").diffusion.sigma == models.DEFAULT_SIGMA["digits"]["additive"],
           "digits", "ADDITIVE")


# ---------------------------------------------------------------- evaluation
def tiny_model():
    return keras.Sequential([
        keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(6),
        SDEBlock(diffusion="additive", sigma=0.3, num_steps=2, seed=1), keras.layers.Dense(3),
    ])


IMAGES = np.random.default_rng(1).uniform(size=(3, 4, 4, 1)).astype("float32")
LABELS = np.array([0, 1, 2])
MODEL = None


def the_model():
    global MODEL
    MODEL = MODEL or tiny_model()
    return MODEL


def evaluation_case(name, function, expect="error", argument=None, value=None, check=None, **kwargs):
    case("evaluation", name, lambda: function(**kwargs), expect, argument, value, check)


def ensemble(**kwargs):
    arguments = {"model": the_model(), "x": IMAGES, "samples": 2, **kwargs}
    return evaluation.ensemble_predict(**arguments)


def pgd(**kwargs):
    arguments = {"model": the_model(), "x": IMAGES, "y": LABELS, "epsilon": 0.1, "steps": 1, **kwargs}
    return evaluation.pgd_attack(**arguments)


def spsa(**kwargs):
    arguments = {"model": the_model(), "x": IMAGES[:1], "y": LABELS[:1], "epsilon": 0.1, "steps": 1, "samples": 2,
                 **kwargs}
    return evaluation.spsa_attack(**arguments)


evaluation_case("ensemble_predict samples=0", ensemble, "error", "samples", "0", samples=0)
evaluation_case("ensemble_predict samples=2.5", ensemble, "error", "samples", "2.5", samples=2.5)
evaluation_case("ensemble_predict samples=True", ensemble, "error", "samples", "True", samples=True)
evaluation_case("ensemble_predict batch_size=0", ensemble, "error", "batch_size", "0", batch_size=0)
evaluation_case("ensemble_predict batch_size='8'", ensemble, "error", "batch_size", "'8'", batch_size="8")
evaluation_case("ensemble_predict from_logits='yes'", ensemble, "error", "from_logits", "'yes'", from_logits="yes")
evaluation_case("ensemble_predict x 1-D", ensemble, "error", "x", "(5,)", x=np.ones(5, "float32"))
evaluation_case("ensemble_predict x empty", ensemble, "either", "x", check=lambda p: p.shape == (0, 3),
                x=np.zeros((0, 4, 4, 1), "float32"))
evaluation_case("ensemble_predict x of wrong image shape", ensemble, "error", "x", "(3, 5, 5, 1)",
                x=np.ones((3, 5, 5, 1), "float32"))
evaluation_case("ensemble_predict x uint8", ensemble, "either", "x", check=lambda p: p.shape == (3, 3),
                x=(IMAGES * 255).astype("uint8"))
evaluation_case("ensemble_predict x float64", ensemble, "ok", check=lambda p: p.shape == (3, 3) and
                np.allclose(p.sum(-1), 1, atol=1e-5), x=IMAGES.astype("float64"))
evaluation_case("ensemble_predict batch_size=np.int64(2)", ensemble, "ok",
                check=lambda p: p.shape == (3, 3), batch_size=np.int64(2))
evaluation_case("ensemble_predict model=function", ensemble, "error", "model", None, model=lambda x: x)
evaluation_case("ensemble_predict model without SDEBlock", ensemble, "either", "model",
                check=lambda p: p.shape == (3, 3),
                model=keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]))
evaluation_case("pgd_attack epsilon=inf", pgd, "error", "epsilon", "inf", epsilon=math.inf)
evaluation_case("pgd_attack epsilon=np.float32(0.1)", pgd, "ok",
                check=lambda a: a.shape == IMAGES.shape and np.all(np.linalg.norm((a - IMAGES).reshape(3, -1), axis=1)
                                                                   <= 0.1 + 1e-5), epsilon=np.float32(0.1))
evaluation_case("pgd_attack epsilon=-0.1", pgd, "error", "epsilon", "-0.1", epsilon=-0.1)
evaluation_case("pgd_attack epsilon=[0.1]", pgd, "error", "epsilon", "[0.1]", epsilon=[0.1])
evaluation_case("pgd_attack steps=0", pgd, "error", "steps", "0", steps=0)
evaluation_case("pgd_attack steps=1.5", pgd, "error", "steps", "1.5", steps=1.5)
evaluation_case("pgd_attack norm=1", pgd, "error", "norm", "1", norm=1)
evaluation_case("pgd_attack norm='L2'", pgd, "either", "norm", check=lambda a: a.shape == IMAGES.shape, norm="L2")
evaluation_case("pgd_attack step_size=0.5 > epsilon", pgd, "error", "step_size", "0.5", step_size=0.5)
evaluation_case("pgd_attack step_size=0", pgd, "error", "step_size", "0", step_size=0.0)
evaluation_case("pgd_attack batch_size=0", pgd, "error", "batch_size", "0", batch_size=0)
evaluation_case("pgd_attack batch_size=-1", pgd, "error", "batch_size", "-1", batch_size=-1)
evaluation_case("pgd_attack y of 2 labels for 3 images", pgd, "error", "y", "(2,)", y=LABELS[:2])
evaluation_case("pgd_attack y float", pgd, "error", "y", "float", y=LABELS.astype("float32"))
evaluation_case("pgd_attack y one-hot", pgd, "error", "y", "(3, 3)", y=np.eye(3, dtype="int32"))
evaluation_case("pgd_attack y=7 out of range", pgd, "error", "y", "7", y=np.array([0, 1, 7]))
evaluation_case("pgd_attack x in [0, 255]", pgd, "error", "x", "255", x=IMAGES * 255)
evaluation_case("pgd_attack eot_samples=0", pgd, "error", "eot_samples", "0", eot_samples=0)
evaluation_case("pgd_attack verbose=-1", pgd, "error", "verbose", "-1", verbose=-1)
evaluation_case("pgd_attack verbose='1'", pgd, "error", "verbose", "'1'", verbose="1")
evaluation_case("pgd_attack model=None", pgd, "error", "model", "None", model=None)
evaluation_case("spsa_attack samples=3", spsa, "error", "samples", "3", samples=3)
evaluation_case("spsa_attack samples=0", spsa, "error", "samples", "0", samples=0)
evaluation_case("spsa_attack learning_rate=0", spsa, "error", "learning_rate", "0", learning_rate=0)
evaluation_case("spsa_attack delta=-1", spsa, "error", "delta", "-1", delta=-1)
evaluation_case("spsa_attack epsilon=nan", spsa, "error", "epsilon", "nan", epsilon=math.nan)
evaluation_case("spsa_attack steps=0", spsa, "error", "steps", "0", steps=0)
evaluation_case("spsa_attack x 3-D (one image)", spsa, "error", "x", "(4, 4, 1)", x=IMAGES[0], y=LABELS[:1])
evaluation_case("attack_correct attack='PGD'",
                lambda: evaluation.attack_correct(the_model(), IMAGES, LABELS, 0.1, attack="PGD"), "error", "attack",
                "'PGD'")
evaluation_case("attack_correct ttn_samples=0",
                lambda: evaluation.attack_correct(the_model(), IMAGES, LABELS, 0.1, ttn_samples=0), "error",
                "ttn_samples", "0")
evaluation_case("pgd_accuracy epsilons=0.1", lambda: evaluation.pgd_accuracy(the_model(), IMAGES, LABELS, 0.1),
                "error", "epsilons", "0.1")
evaluation_case("pgd_accuracy epsilons=[]", lambda: evaluation.pgd_accuracy(the_model(), IMAGES, LABELS, []),
                "error", "epsilons", "[]")
evaluation_case("pgd_accuracy epsilons=[nan]", lambda: evaluation.pgd_accuracy(the_model(), IMAGES, LABELS, [math.nan]),
                "error", "epsilons", "nan")
evaluation_case("TestTimeEnsemble noise='yes'", lambda: evaluation.TestTimeEnsemble(the_model(), noise="yes"),
                "error", "noise", "'yes'")
evaluation_case("TestTimeEnsemble jit_compile=1", lambda: evaluation.TestTimeEnsemble(the_model(), jit_compile=1),
                "error", "jit_compile", "1")
evaluation_case("TestTimeEnsemble samples=None", lambda: evaluation.TestTimeEnsemble(the_model(), samples=None),
                "error", "samples", "None")
evaluation_case("noise_at_inference enabled='no'",
                lambda: evaluation.noise_at_inference(the_model(), enabled="no").__enter__(), "error", "enabled",
                "'no'")
evaluation_case("accuracy of 3 rows vs 2 labels", lambda: evaluation.accuracy(np.eye(3), [0, 1]), "error",
                "labels", "(2,)")
evaluation_case("statistics.bootstrap_interval level=1.5",
                lambda: evaluation.statistics.bootstrap_interval(np.ones((2, 3)), level=1.5), "error", "level", "1.5")
evaluation_case("statistics.bootstrap_interval resamples=0",
                lambda: evaluation.statistics.bootstrap_interval(np.ones((2, 3)), resamples=0), "error", "resamples",
                "0")


def growth(**kwargs):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(6, name="stem"),
                              SDEBlock(diffusion="additive", num_steps=2, name="sde_block")])
    arguments = {"model": model, "x": X, "x_perturbed": X + 0.01, **kwargs}
    return evaluation.perturbation_growth(**arguments)


evaluation_case("perturbation_growth of a fresh Sequential", growth, "ok",
                check=lambda tn: tn[0].shape == (3,) and tn[1].shape == (3,) and abs(tn[1][0] - np.linalg.norm(
                    np.full(6, 0.01) @ np.eye(6)) * 0) >= 0)
evaluation_case("perturbation_growth block_name='nope'", growth, "error", "block_name", "'nope'", block_name="nope")
evaluation_case("perturbation_growth x_perturbed of another shape", growth, "error", "x_perturbed", "(3, 6)",
                x_perturbed=np.ones((3, 6), "float32"))
evaluation_case("perturbation_growth noise_seed=-1", growth, "error", "noise_seed", "-1", noise_seed=-1)
evaluation_case("perturbation_growth noise='yes'", growth, "error", "noise", "'yes'", noise="yes")
evaluation_case("perturbation_growth block_name='stem' (not an SDEBlock)", growth, "error", "block_name", "'stem'",
                block_name="stem")


# ---------------------------------------------------------------- callbacks
case("callbacks", "StopOnNonFiniteLoss(restore_weights=None)",
     lambda: callbacks.StopOnNonFiniteLoss(restore_weights=None), "error", "restore_weights", "None")
case("callbacks", "StopOnNonFiniteLoss(hint=5)", lambda: callbacks.StopOnNonFiniteLoss(hint=5), "error", "hint", "5")


def callback_stops_on_nan():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    try:
        model.fit(X, np.full((2, 1), np.nan, "float32"), verbose=0, callbacks=[callbacks.StopOnNonFiniteLoss()])
    except callbacks.NonFiniteLossError as error:
        return all(np.all(np.isfinite(numpy(w))) for w in model.weights) and "restored" in str(error)
    return False


case("callbacks", "StopOnNonFiniteLoss on a NaN loss: stops, finite weights", callback_stops_on_nan, "ok",
     check=lambda ok: ok)


# ---------------------------------------------------------------- save / load
def saved(model, name="m.keras"):
    path = os.path.join(tempfile.mkdtemp(), name)
    model.save(path)
    return path


def round_trip(**kwargs):
    model = keras.Sequential([keras.Input((6,)), SDEBlock(**{"diffusion": "additive", "num_steps": 2, **kwargs})])
    loaded = keras.saving.load_model(saved(model))
    return numpy(model(X, noise_seed=3)) if False else (model, loaded)


def round_trip_check(pair):
    model, loaded = pair
    block, other = model.layers[0], loaded.layers[0]
    as_json = lambda config: json.loads(json.dumps(config))  # noqa: E731 - tuples and lists alike
    return (as_json(block.get_config()) == as_json(other.get_config())
            and same(block(X, noise_seed=3), other(X, noise_seed=3)) and same(model(X), loaded(X)))


case("saving", "round trip additive", lambda: round_trip(), "ok", check=round_trip_check)
case("saving", "round trip bernoulli/pathwise/milstein",
     lambda: round_trip(increments=brownian.Bernoulli(0.7), gradient=gradients.Pathwise(2), solver="milstein"), "ok",
     check=round_trip_check)
case("saving", "round trip return_trajectory", lambda: round_trip(return_trajectory=True, seed=4), "ok",
     check=round_trip_check)


def truncated_file():
    path = saved(keras.Sequential([keras.Input((6,)), SDEBlock(diffusion="additive", num_steps=2)]))
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    return keras.saving.load_model(path)


case("saving", "load a truncated .keras file", truncated_file, "error", "m.keras", None)


class Unregistered(diffusions.Diffusion):
    def call(self, h, t, f):
        return 0.1 * ops.ones_like(h)


def unregistered_diffusion():
    path = saved(keras.Sequential([keras.Input((6,)), SDEBlock(diffusion=Unregistered(), num_steps=2)]))
    return keras.saving.load_model(path)


case("saving", "load with an unregistered custom diffusion", unregistered_diffusion, "error", "Unregistered", None)
case("saving", "from_config num_steps=0", lambda: SDEBlock.from_config({"num_steps": 0}), "error", "num_steps", "0")
case("saving", "from_config of an old release (checkpoints, keep_prob)",
     lambda: SDEBlock.from_config({"diffusion": "additive", "gradient": "pathwise", "checkpoints": 3,
                                   "increments": "bernoulli", "keep_prob": 0.7}), "ok",
     check=lambda b: b.gradient.checkpoints == 3 and b.increments.keep_prob == 0.7)
case("saving", "from_config drift='mlp'", lambda: SDEBlock.from_config({"drift": "mlp"}), "error", "drift", None)
case("saving", "load a path that does not exist", lambda: keras.saving.load_model("/nonexistent/x.keras"), "error",
     "/nonexistent/x.keras", None)


# ---------------------------------------------------------------- data loaders
from keras_nsde import data  # noqa: E402

case("data", "digits_arrays('validation')", lambda: data.digits_arrays("validation"), "error", "split", "'validation'")
case("data", "digits_arrays(None)", lambda: data.digits_arrays(None), "error", "split", "None")
case("data", "digits_arrays('TRAIN')", lambda: data.digits_arrays("TRAIN"), "error", "split", "'TRAIN'")
case("data", "digits_arrays('test') shapes", lambda: data.digits_arrays("test"), "ok",
     check=lambda xy: xy[0].shape == (360, 8, 8, 1) and xy[0].max() <= 1 and xy[1].dtype == np.int32)
case("data", "load('mnist')", lambda: data.load("mnist", "train"), "error", "dataset", "'mnist'")
case("data", "load batch_size=0", lambda: data.load("digits", "train", batch_size=0), "error", "batch_size", "0")
case("data", "load batch_size=2.5", lambda: data.load("digits", "train", batch_size=2.5), "error", "batch_size", "2.5")
case("data", "load split=3", lambda: data.load("digits", 3), "error", "split", "3")
case("data", "load limit=-1", lambda: data.load("digits", "train", limit=-1), "error", "limit", "-1")
case("data", "load limit=2.5", lambda: data.load("digits", "train", limit=2.5), "error", "limit", "2.5")
case("data", "load augment='yes'", lambda: data.load("digits", "train", augment="yes"), "error", "augment", "'yes'")
case("data", "load shuffle='no'", lambda: data.load("digits", "train", shuffle="no"), "error", "shuffle", "'no'")
case("data", "load seed='x'", lambda: data.load("digits", "train", seed="x"), "error", "seed", "'x'")
case("data", "load digits split='validation'", lambda: data.load("digits", "validation"), "error", "split",
     "'validation'")
case("data", "load tiny_imagenet data_dir=None", lambda: data.load("tiny_imagenet", "train"), "error", "data_dir",
     "None")
case("data", "load tiny_imagenet data_dir missing", lambda: data.load("tiny_imagenet", "train", data_dir="/nonexistent"),
     "error", "/nonexistent", None)
case("data", "load digits limit=5 batch 2", lambda: [b[0].shape[0] for b in data.load("digits", "test", 2, limit=5)],
     "ok", check=lambda sizes: sizes == [2, 2, 1])
case("data", "load_corrupted level=0", lambda: data.load_corrupted("gaussian_noise", 0), "error", "level", "0")
case("data", "load_corrupted level=True", lambda: data.load_corrupted("gaussian_noise", True), "error", "level", "True")
case("data", "load_corrupted level=2.5", lambda: data.load_corrupted("gaussian_noise", 2.5), "error", "level", "2.5")
case("data", "load_corrupted batch_size=0", lambda: data.load_corrupted("gaussian_noise", 3, batch_size=0), "error",
     "batch_size", "0")
case("data", "load_corrupted corruption='nope'", lambda: data.load_corrupted("nope", 3), "error", "corruption",
     "'nope'")
case("data", "load_corrupted corruption=3", lambda: data.load_corrupted(3, 3), "error", "corruption", "3")
case("data", "load_corrupted limit=-1", lambda: data.load_corrupted("gaussian_noise", 3, limit=-1), "error", "limit",
     "-1")


# ---------------------------------------------------------------- layers and analysis
from keras_nsde import analysis, layers  # noqa: E402

FEATURES = np.random.default_rng(2).normal(size=(2, 4, 4, 4)).astype("float32")


def layer_case(name, make, expect="error", argument=None, value=None, check=None, inputs=None):
    def run():
        layer = make()
        return layer if inputs is None else layer(inputs)

    case("layers", name, run, expect, argument, value, check)


layer_case("GroupNorm(groups=0)", lambda: layers.GroupNorm(0), "groups", "0", inputs=FEATURES)
layer_case("GroupNorm(groups=3) for 4 channels", lambda: layers.GroupNorm(3), "groups", "3", inputs=FEATURES)
layer_case("GroupNorm(groups='2')", lambda: layers.GroupNorm("2"), "groups", "'2'", inputs=FEATURES)
layer_case("GroupNorm(epsilon=-1)", lambda: layers.GroupNorm(2, epsilon=-1.0), "epsilon", "-1", inputs=FEATURES)
layer_case("GroupNorm(relu='yes')", lambda: layers.GroupNorm(2, relu="yes"), "relu", "'yes'")
layer_case("GroupNorm(groups=np.int64(2))", lambda: layers.GroupNorm(np.int64(2)), "ok", inputs=FEATURES,
           check=lambda y: tuple(y.shape) == FEATURES.shape)
layer_case("TimeConv2D(filters=np.int64(4))", lambda: layers.TimeConv2D(np.int64(4)), "ok",
           check=lambda layer: layer.filters == 4)
layer_case("TimeConv2D(filters=0)", lambda: layers.TimeConv2D(0), "filters", "0")
layer_case("TimeConv2D(kernel_size=2)", lambda: layers.TimeConv2D(4, kernel_size=2), "kernel_size", "2")
layer_case("MLPDrift(units=0)", lambda: layers.MLPDrift(0), "units", "0")
layer_case("MLPDrift(hidden_layers=-1)", lambda: layers.MLPDrift(6, hidden_layers=-1), "hidden_layers", "-1")
layer_case("MLPDrift(hidden_units=2.5)", lambda: layers.MLPDrift(6, hidden_units=2.5), "hidden_units", "2.5")
layer_case("MLPDrift(activation='nope')", lambda: layers.MLPDrift(6, activation="nope"), "activation", "nope")
layer_case("MLPDrift(units=5) for 6 features", lambda: SDEBlock(drift=layers.MLPDrift(5), num_steps=2),
           "drift", "5", inputs=X)
layer_case("MLPDrift(hidden_layers=0)", lambda: SDEBlock(drift=layers.MLPDrift(6, hidden_layers=0), num_steps=2),
           "ok", inputs=X, check=lambda y: tuple(y.shape) == (2, 6))
layer_case("ConvDrift(filters=0)", lambda: layers.ConvDrift(0), "filters", "0")
layer_case("ConvDrift(num_convs=-1)", lambda: layers.ConvDrift(4, num_convs=-1), "num_convs", "-1")
layer_case("ConvDrift(groups=0)", lambda: layers.ConvDrift(4, groups=0), "groups", "0")
layer_case("ConvDrift(filters=3) for 4 channels", lambda: SDEBlock(drift=layers.ConvDrift(3), num_steps=2), "filters",
           "3", inputs=FEATURES)


def built(**kwargs):
    b = SDEBlock(**{"diffusion": "multiplicative", "sigma": 0.5, "num_steps": 3, **kwargs})
    b(X)
    return b


def analysis_case(name, function, expect="error", argument=None, value=None, check=None):
    case("analysis", name, function, expect, argument, value, check)


analysis_case("lyapunov_exponent perturbation=0", lambda: analysis.lyapunov_exponent(built(), X, perturbation=0),
              "perturbation", "0")
analysis_case("lyapunov_exponent noise='yes'", lambda: analysis.lyapunov_exponent(built(), X, noise="yes"), "noise",
              "'yes'")
analysis_case("lyapunov_exponent noise_seed=-1", lambda: analysis.lyapunov_exponent(built(), X, noise_seed=-1),
              "noise_seed", "-1")
analysis_case("lyapunov_exponent noise_seed=1.5", lambda: analysis.lyapunov_exponent(built(), X, noise_seed=1.5),
              "noise_seed", "1.5")
analysis_case("lyapunov_exponent block=a Dense layer",
              lambda: analysis.lyapunov_exponent(keras.layers.Dense(6), X), "block", "Dense")
analysis_case("lyapunov_exponent unbuilt block", lambda: analysis.lyapunov_exponent(SDEBlock(num_steps=2), X),
              "either", "block", check=lambda e: np.isfinite(e))
analysis_case("lyapunov_exponent h0 of another width", lambda: analysis.lyapunov_exponent(built(), np.ones((2, 5))),
              "h0", "(2, 5)")
analysis_case("lyapunov_exponent h0 int", lambda: analysis.lyapunov_exponent(built(), np.ones((2, 6), "int32")),
              "ok", check=lambda e: np.isfinite(e))
analysis_case("lyapunov_exponent dopri5 block",
              lambda: analysis.lyapunov_exponent(built(diffusion="none", sigma=None, solver="dopri5"), X), "either",
              "solver", check=lambda e: np.isfinite(e))
analysis_case("lyapunov_exponent identity drift: exponent 0 without noise",
              lambda: analysis.lyapunov_exponent(built(drift=ZeroDrift(), diffusion="none", sigma=None), X,
                                                 noise=False), "ok", check=lambda e: abs(e) < 1e-5)
analysis_case("lipschitz_estimate iterations=0", lambda: analysis.lipschitz_estimate(built(), X, iterations=0),
              "iterations", "0")
analysis_case("lipschitz_estimate of h -> 2h is 2",
              lambda: analysis.lipschitz_estimate(built(drift=DoublingDrift()), X), "ok",
              check=lambda L: abs(L - 2.0) < 1e-4)
analysis_case("stability_bound lipschitz='x'", lambda: analysis.stability_bound(built(), "x"), "lipschitz", "'x'")
analysis_case("stability_bound lipschitz=-1", lambda: analysis.stability_bound(built(), -1.0), "lipschitz", "-1")
analysis_case("stability_bound additive block", lambda: analysis.stability_bound(built(diffusion="additive"), 1.0),
              "diffusion", "Additive")


SEEDED_BLOCK = block(seed=11)


# ---------------------------------------------------------------- running and judging
class TimeLimit(Exception):
    pass


def on_alarm(signum, frame):
    raise TimeLimit(f"ran past {TIME_LIMIT_S} s")


def judge(spec):
    """(outcome, detail) for one case."""
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        result = spec["call"]()
        if spec["check"] is not None and spec["expect"] != "error":
            ok = bool(spec["check"](result))
        else:
            ok = True
    except TimeLimit as error:
        return "crash", str(error)
    except Exception as error:  # noqa: BLE001 - judging every kind of failure is the point
        message = f"{type(error).__name__}: {error}".replace("\n", " ")
        if spec["expect"] == "ok":
            return "crash", message[:300]
        clear = (
            isinstance(error, (ValueError, TypeError, NotImplementedError))
            and spec["argument"] is not None
            and spec["argument"] in str(error)
            and (spec["value"] is None or spec["value"] in str(error) or "Received" in str(error))
        )
        return ("clear" if clear else "unclear"), message[:300]
    finally:
        signal.alarm(0)
    if spec["expect"] == "error":
        return "silent", "accepted"
    return ("fine", "") if ok else ("silent", "wrong result")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only this group")
    parser.add_argument("--verbose", action="store_true", help="print the message of every case")
    parser.add_argument("-k", help="run only cases whose name contains this")
    options = parser.parse_args()
    counts = {}
    rows = []
    for spec in CASES:
        if options.only and spec["group"] != options.only or options.k and options.k not in spec["name"]:
            continue
        try:
            outcome, detail = judge(spec)
        except Exception:  # noqa: BLE001
            outcome, detail = "crash", traceback.format_exc(limit=1).replace("\n", " ")[:300]
        counts[outcome] = counts.get(outcome, 0) + 1
        rows.append((spec["group"], spec["name"], outcome, detail))
        shown = options.verbose or outcome in ("unclear", "silent", "crash")
        print(f"{spec['group']:<10} | {spec['name'][:62]:<62} | {BACKEND:<10} | {outcome:<7}"
              + (f" | {detail[:220]}" if shown and detail else ""), flush=True)
    print(f"\n{BACKEND}: {len(rows)} cases: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in
                                                          ("clear", "unclear", "silent", "crash", "fine")))


if __name__ == "__main__":
    main()
