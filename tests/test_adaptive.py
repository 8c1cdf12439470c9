"""solver="dopri5" on every backend: TFP (TensorFlow), diffrax (JAX), torchdiffeq (PyTorch), each with its adjoint."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import SDEBlock, brownian, gradients, solvers
from tests.harness import value_and_gradients

pytestmark = pytest.mark.all_backends

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()
# The backend's adaptive solver comes from an extra: dopri5 (TFP), dopri5-jax (diffrax), dopri5-torch (torchdiffeq).
pytest.importorskip({"tensorflow": "tensorflow_probability", "jax": "diffrax", "torch": "torchdiffeq"}[BACKEND])


class DiagonalLinear(keras.layers.Layer):
    """f(h) = a * h elementwise: dh/dt = a h has the closed form h(t) = h0 exp(a (t - t0))."""

    def build(self, input_shape):
        self.a = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="a")

    def call(self, h):
        return h * self.a


def linear_block(a, **kwargs):
    block = SDEBlock(drift=DiagonalLinear(dtype="float64"), dtype="float64", **kwargs)
    block.build((None, len(a)))
    block.drift.a.assign(np.asarray(a, "float64"))
    return block


def numpy(x):
    return ops.convert_to_numpy(x)


def count_drift_evaluations(block):
    """Wraps the block's drift so that every evaluation the solver makes is counted (also inside jax.jit)."""
    calls = [0]
    drift_fn = block.drift_fn

    def counted(h, t):
        if BACKEND == "jax":
            import jax

            jax.debug.callback(lambda: calls.__setitem__(0, calls[0] + 1))
        else:
            calls[0] += 1
        return drift_fn(h, t)

    block.drift_fn = counted
    return calls


@pytest.mark.usefixtures("float64_on_jax")
def test_dopri5_block_matches_the_closed_form_and_records_its_drift_evaluations():
    a = np.array([-1.5, 0.3, 1.2])
    h0 = np.random.default_rng(0).normal(size=(4, 3))
    block = linear_block(a, t1=2.0, solver=solvers.Dopri5(rtol=1e-9, atol=1e-12))
    block(h0)  # the first call also checks once that the drift is finite
    calls = count_drift_evaluations(block)
    h = numpy(block(h0))
    np.testing.assert_allclose(h, h0 * np.exp(2.0 * a), rtol=1e-7)
    if BACKEND == "jax":
        import jax

        jax.effects_barrier()
    assert int(numpy(block.nfe.value)) == calls[0] > 20


@pytest.mark.usefixtures("float64_on_jax")
def test_dopri5_trajectory_matches_the_closed_form_at_every_output_time():
    a = np.array([-1.0, 0.5])
    h0 = np.random.default_rng(1).normal(size=(3, 2))
    block = linear_block(a, num_steps=4, return_trajectory=True, solver=solvers.Dopri5(rtol=1e-9, atol=1e-12))
    trajectory = numpy(block(h0))
    times = np.linspace(0.0, 1.0, 5)
    assert trajectory.shape == (3, 5, 2)
    np.testing.assert_allclose(trajectory, h0[:, None, :] * np.exp(times[None, :, None] * a), rtol=1e-7)


def test_looser_tolerance_needs_fewer_evaluations():
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    counts = []
    for rtol in (1e-2, 1e-6):
        block = SDEBlock(solver=solvers.Dopri5(rtol=rtol, atol=rtol * 1e-2), seed=0)
        block.build(x.shape)
        block.set_weights([np.full_like(w, 0.3) for w in block.get_weights()])
        block(x)
        counts.append(int(numpy(block.nfe.value)))
    assert counts[0] < counts[1]


@pytest.mark.usefixtures("float64_on_jax")
def test_dopri5_adjoint_gradient_equals_the_closed_form():
    """L = sum h(T)^2 with h(T) = h0 exp(a T): dL/dh0 = 2 h0 exp(2 a T), dL/da = sum_batch 2 T h0^2 exp(2 a T)."""
    a, duration = np.array([-0.8, 0.4, 1.1]), 1.5
    h0 = np.random.default_rng(2).normal(size=(5, 3))
    block = linear_block(a, t1=duration, solver=solvers.Dopri5(rtol=1e-10, atol=1e-12))
    grad_h0, grad_a = value_and_gradients(lambda h: ops.sum(ops.square(block(h))), block, h0)
    growth = np.exp(2 * a * duration)
    np.testing.assert_allclose(numpy(grad_h0), 2 * h0 * growth, rtol=1e-6)
    np.testing.assert_allclose(numpy(grad_a), (2 * duration * h0**2 * growth).sum(axis=0), rtol=1e-6)


def test_dopri5_gradient_of_an_mlp_drift_agrees_with_fine_euler_autodiff():
    """Every layer's weights of a nonlinear drift get the adjoint's gradient (against autodiff through 2000 steps)."""
    x = np.random.default_rng(1).normal(size=(2, 3)).astype("float32")
    adaptive = SDEBlock(solver=solvers.Dopri5(rtol=1e-7, atol=1e-9))
    euler = SDEBlock(num_steps=2000)
    for block in (adaptive, euler):
        block.build(x.shape)
    for source, target in zip(adaptive.trainable_variables, euler.trainable_variables):
        target.assign(source)
    results = [
        value_and_gradients(lambda h, block=block: ops.sum(ops.square(block(h))), block, x) for block in (adaptive, euler)
    ]
    assert len(results[0]) == 1 + len(adaptive.trainable_variables) > 4
    for got, expected in zip(*results):
        got, expected = numpy(got), numpy(expected)
        np.testing.assert_allclose(got, expected, rtol=0, atol=5e-3 * np.abs(expected).max())


def test_dopri5_block_trains_in_fit_with_the_adjoint():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = np.tanh(x[:, :1])
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), SDEBlock(solver="dopri5", name="ode"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.02), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * before
    assert int(numpy(model.get_layer("ode").nfe.value)) > 6  # recorded inside the compiled train/test step


LOAD_AND_PREDICT = """
import sys
import keras, numpy as np
import keras_nsde
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[3], keras.ops.convert_to_numpy(model(np.load(sys.argv[2]), training=False)))
print(int(keras.ops.convert_to_numpy(model.get_layer("ode").nfe.value)))
"""


@pytest.mark.slow
def test_keras_file_with_a_dopri5_block_saved_here_loads_on_the_other_backends(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), SDEBlock(solver=solvers.Dopri5(rtol=1e-6, atol=1e-8), name="ode"), keras.layers.Dense(2)]
    )
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    expected = numpy(model(x, training=False))
    model.save(tmp_path / "dopri5.keras")
    np.save(tmp_path / "x.npy", x)
    for other in sorted({"tensorflow", "jax", "torch"} - {BACKEND}):
        env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = tmp_path / f"{other}.npy"
        result = subprocess.run(
            [sys.executable, "-c", LOAD_AND_PREDICT, str(tmp_path / "dopri5.keras"), str(tmp_path / "x.npy"), str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, (other, result.stderr[-3000:])
        assert int(result.stdout.strip().splitlines()[-1]) > 6
        np.testing.assert_allclose(np.load(out), expected, rtol=1e-4, atol=1e-5, err_msg=other)


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"solver": "dopri5", "diffusion": "additive"}, "diffusion=Additive"),
        ({"solver": "dopri5", "gradient": "pathwise"}, "gradient=Pathwise(checkpoints=None)"),
        ({"solver": "rk4"}, "solver='rk4'"),
        ({"solver": 4}, "solver=4"),
        ({"rtol": 1e-3}, "rtol=0.001"),
        ({"increments": "uniform"}, "increments='uniform'"),
        ({"keep_prob": 0.5}, "Bernoulli(keep_prob=...)"),
        ({"checkpoints": 3}, "Pathwise(checkpoints=...)"),
        ({"gradient": "reversible"}, "solver=EulerMaruyama()"),
        ({"solver": solvers.ReversibleHeun("ito"), "diffusion": "dropout"}, "diffusion=Dropout"),
    ],
)
def test_value_error_for_solver_options_that_do_not_fit(kwargs, received):
    with pytest.raises(ValueError, match=re.escape(received)):
        SDEBlock(**kwargs)


@pytest.mark.parametrize(
    "make, received",
    [
        (lambda: solvers.Dopri5(rtol=-1.0), "rtol=-1.0"),
        (lambda: solvers.Dopri5(atol="small"), "atol='small'"),
        (lambda: brownian.Bernoulli(keep_prob=1.0), "keep_prob=1.0"),
        (lambda: gradients.Pathwise(checkpoints=0), "checkpoints=0"),
        (lambda: solvers.ReversibleHeun("backward"), "interpretation='backward'"),
    ],
)
def test_value_error_for_bad_solver_increments_and_gradient_arguments(make, received):
    with pytest.raises(ValueError, match=received):
        make()


def test_value_error_for_a_half_precision_dopri5_block():
    block = SDEBlock(solver="dopri5", dtype="mixed_float16")
    with pytest.raises(ValueError, match="dtype=float16"):
        block(np.zeros((2, 3), "float32"))
