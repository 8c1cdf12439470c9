import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_nsde import SDEBlock, brownian, gradients, solvers


def test_dopri5_block_matches_a_fine_euler_solve_and_counts_evaluations():
    x = np.random.default_rng(0).normal(size=(4, 3))
    block = SDEBlock(solver=solvers.Dopri5(rtol=1e-8, atol=1e-10), dtype="float64")
    block.build(x.shape)
    fine = tf.function(lambda h: solvers.euler_maruyama(block.drift_fn, None, h, None, num_steps=4000))(tf.constant(x))
    np.testing.assert_allclose(block(x).numpy(), fine.numpy(), atol=2e-3)
    nfe = int(block.nfe.numpy())
    assert nfe > 6 and nfe % 6 in (0, 1, 2)  # 6 stages per attempted step (FSAL), plus the first


def test_looser_tolerance_needs_fewer_evaluations():
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    counts = []
    for rtol in (1e-2, 1e-6):
        block = SDEBlock(solver=solvers.Dopri5(rtol=rtol, atol=rtol * 1e-2), seed=0)
        block.build(x.shape)
        block.set_weights([np.full_like(w, 0.3) for w in block.get_weights()])
        block(x)
        counts.append(int(block.nfe.numpy()))
    assert counts[0] < counts[1]


def test_dopri5_block_trains_in_fit_with_the_tfp_adjoint():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = np.tanh(x[:, :1])
    model = keras.Sequential([keras.Input((4,)), SDEBlock(solver="dopri5", name="ode"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.02), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * before
    assert int(model.get_layer("ode").nfe.numpy()) > 0


def test_dopri5_gradient_agrees_with_fine_euler_autodiff():
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 3)))
    adaptive = SDEBlock(solver=solvers.Dopri5(rtol=1e-9, atol=1e-11), dtype="float64")
    euler = SDEBlock(num_steps=2000, dtype="float64")
    for block in (adaptive, euler):
        block.build(x.shape)
    for source, target in zip(adaptive.trainable_variables, euler.trainable_variables):
        target.assign(source)
    @tf.function
    def gradients(block, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(block(x) ** 2)
        return tape.gradient(loss, [x] + block.trainable_variables)

    grads = [gradients(block, x) for block in (adaptive, euler)]
    for a, e in zip(*grads):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=0, atol=5e-3 * np.abs(e.numpy()).max())


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
