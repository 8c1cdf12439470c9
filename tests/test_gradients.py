"""The pathwise gradient (Theorem 3.1) against autodiff, finite differences and forward mode, on every backend.

float64 cases skip on JAX (no 64-bit types by default); tf.function, XLA and
TensorFlow-option cases run on TensorFlow only.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import SDEBlock, diffusions, gradients
from keras_nsde.gradients import pathwise_jvp
from tests.custom_diffusion import TanhDiffusion
from tests.gradient_checks import max_relative_error, random_tensor
from tests.harness import tensorflow_only, value_and_gradients

pytestmark = pytest.mark.all_backends

NOISE_SEED = np.array([3, 9], "int32")
STATES = {"conv": (2, 4, 4, 3), "vector": (3, 5)}
DIFFUSION_CASES = {
    "none": lambda dtype: "none",
    "additive_learnable": lambda dtype: diffusions.Additive(0.3, learnable=True, dtype=dtype),
    "multiplicative": lambda dtype: diffusions.Multiplicative(0.6, dtype=dtype),
    "dropout": lambda dtype: diffusions.Dropout(0.6, dtype=dtype),
    "custom": lambda dtype: TanhDiffusion(0.3, dtype=dtype),
}
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}
# Keras computes float64 matmuls in float32 except on TensorFlow (keras.src.backend.common.dtypes
# BIT64_TO_BIT32_DTYPE): computations that differ in order (finite differences, forward against
# reverse mode) then agree to float32 precision only.
FLOAT64_MATMUL = keras.backend.backend() == "tensorflow"
# Image-state blocks take ~30 s each to compile on XLA:CPU: slow on JAX (tests/test_backends.py
# checks the pathwise gradient and train_on_batch on images there in the default run).
SLOW_ON_JAX = pytest.mark.slow if keras.backend.backend() == "jax" else pytest.mark.all_backends


def twin_blocks(state, diffusion, dtype, checkpoints=None, **kwargs):
    """An autodiff and a pathwise block with the same weights and seed."""
    if dtype == "float64" and keras.backend.backend() == "jax":
        pytest.skip("JAX runs without 64-bit types by default")
    blocks = []
    for gradient in (gradients.Autodiff(), gradients.Pathwise(checkpoints)):
        block = SDEBlock(
            diffusion=DIFFUSION_CASES[diffusion](dtype), num_steps=5, seed=1, gradient=gradient, dtype=dtype, **kwargs
        )
        block.build((None,) + STATES[state][1:])
        blocks.append(block)
    blocks[1].set_weights(blocks[0].get_weights())
    return blocks


def loss_gradients(block, h0, cotangent, noise_seed=NOISE_SEED):
    """d<cotangent, h_T>/d(h0, weights) on the path of `noise_seed`."""
    seed = noise_seed if block.diffusion.is_noisy else None

    def loss(h):
        return ops.sum(ops.convert_to_tensor(cotangent) * block(h, noise_seed=seed, training=True))

    return loss(h0), value_and_gradients(loss, block, h0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("state", [pytest.param("conv", marks=SLOW_ON_JAX), "vector"])
@pytest.mark.parametrize("diffusion", DIFFUSION_CASES)
def test_pathwise_gradient_matches_autodiff_on_the_same_path(diffusion, state, dtype):
    autodiff, pathwise = twin_blocks(state, diffusion, dtype)
    h0 = random_tensor(STATES[state], dtype, 0)
    cotangent = random_tensor(STATES[state], dtype, 1)
    loss_a, grads_a = loss_gradients(autodiff, h0, cotangent)
    loss_p, grads_p = loss_gradients(pathwise, h0, cotangent)
    assert all(g is not None for g in grads_p)
    assert len(grads_p) == len(pathwise.trainable_variables) + 1
    np.testing.assert_allclose(ops.convert_to_numpy(loss_p), ops.convert_to_numpy(loss_a), rtol=TOLERANCE[dtype])
    assert max_relative_error(grads_a, grads_p) < TOLERANCE[dtype]


@pytest.mark.parametrize("checkpoints", [1, 2, 4, 5, 50])
@pytest.mark.parametrize("return_trajectory", [False, True])
def test_pathwise_gradient_is_exact_for_every_checkpoint_setting(checkpoints, return_trajectory):
    autodiff, pathwise = twin_blocks(
        "vector", "dropout", "float64", checkpoints=checkpoints, return_trajectory=return_trajectory
    )
    h0 = random_tensor(STATES["vector"], "float64", 0)
    out_shape = autodiff.compute_output_shape(STATES["vector"])
    cotangent = random_tensor(out_shape, "float64", 1)
    _, grads_a = loss_gradients(autodiff, h0, cotangent)
    _, grads_p = loss_gradients(pathwise, h0, cotangent)
    assert max_relative_error(grads_a, grads_p) < 1e-10


@pytest.mark.parametrize("return_trajectory", [False, True])
@pytest.mark.parametrize("solver", ["milstein", "reversible_heun"])
def test_pathwise_gradient_is_exact_for_every_fixed_step_solver(solver, return_trajectory):
    """The adjoint runs over the solver's whole state: reversible Heun's (y, y^, f, g) as well as h."""
    autodiff, pathwise = twin_blocks(
        "vector", "multiplicative", "float64", checkpoints=2, solver=solver, return_trajectory=return_trajectory
    )
    h0 = random_tensor(STATES["vector"], "float64", 0)
    cotangent = random_tensor(autodiff.compute_output_shape(STATES["vector"]), "float64", 1)
    _, grads_a = loss_gradients(autodiff, h0, cotangent)
    _, grads_p = loss_gradients(pathwise, h0, cotangent)
    assert max_relative_error(grads_a, grads_p) < (1e-10 if FLOAT64_MATMUL else 1e-5)


@tensorflow_only
@pytest.mark.parametrize("diffusion", ["multiplicative", "dropout"])
def test_pathwise_gradient_matches_autodiff_inside_tf_function(diffusion):
    import tensorflow as tf

    autodiff, pathwise = twin_blocks("conv", diffusion, "float32")
    h0 = random_tensor(STATES["conv"], "float32", 0)
    cotangent = random_tensor(STATES["conv"], "float32", 1)
    _, grads_a = tf.function(loss_gradients)(autodiff, h0, cotangent)
    _, grads_p = tf.function(loss_gradients)(pathwise, h0, cotangent)
    assert max_relative_error(grads_a, grads_p) < 1e-4


def test_pathwise_gradient_agrees_with_finite_differences():
    _, pathwise = twin_blocks("vector", "dropout", "float64")
    h0 = random_tensor(STATES["vector"], "float64", 0)
    cotangent = random_tensor(STATES["vector"], "float64", 1)
    _, grads = loss_gradients(pathwise, h0, cotangent)
    direction = [random_tensor(v.shape, v.dtype, 10 + i) for i, v in enumerate(pathwise.trainable_variables)]
    predicted = sum(float(np.sum(ops.convert_to_numpy(g) * ops.convert_to_numpy(d))) for g, d in zip(grads[1:], direction))

    def loss_at(scale):
        originals = [ops.convert_to_numpy(v) for v in pathwise.trainable_variables]
        for v, d in zip(pathwise.trainable_variables, direction):
            v.assign(v + scale * ops.convert_to_numpy(d))
        loss, _ = loss_gradients(pathwise, h0, cotangent)
        for v, original in zip(pathwise.trainable_variables, originals):
            v.assign(original)
        return float(ops.convert_to_numpy(loss))

    eps, rel = (1e-6, 1e-7) if FLOAT64_MATMUL else (1e-3, 1e-3)
    central_difference = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert central_difference == pytest.approx(predicted, rel=rel)


@pytest.mark.parametrize("diffusion", list(DIFFUSION_CASES))
def test_jvp_of_the_beta_sde_matches_the_reverse_gradient(diffusion):
    """<grad_w L, v> = dL/dh_T . (beta_T v), Theorem 3.1 on the same Brownian path."""
    _, pathwise = twin_blocks("vector", diffusion, "float64")
    h0 = random_tensor(STATES["vector"], "float64", 0)
    cotangent = random_tensor(STATES["vector"], "float64", 1)
    _, grads = loss_gradients(pathwise, h0, cotangent)
    direction = [random_tensor(v.shape, v.dtype, 10 + i) for i, v in enumerate(pathwise.trainable_variables)]
    seed = NOISE_SEED if pathwise.diffusion.is_noisy else None
    h_final, beta_v = pathwise_jvp(pathwise, h0, direction, noise_seed=seed)
    np.testing.assert_allclose(
        ops.convert_to_numpy(h_final), ops.convert_to_numpy(pathwise(h0, noise_seed=seed, training=True)), rtol=1e-12 if FLOAT64_MATMUL else 1e-6
    )
    numpy = ops.convert_to_numpy
    reverse = sum(float(np.sum(numpy(g) * numpy(d))) for g, d in zip(grads[1:], direction))
    assert float(np.sum(numpy(cotangent) * numpy(beta_v))) == pytest.approx(reverse, rel=1e-10 if FLOAT64_MATMUL else 1e-5)


def test_value_error_when_jvp_direction_does_not_match_the_weights():
    _, pathwise = twin_blocks("vector", "dropout", "float64")
    with pytest.raises(ValueError, match="Received: 1 tensors"):
        pathwise_jvp(pathwise, ops.ones(STATES["vector"], "float64"), [ops.ones(3)])


def fit_losses(gradient, steps=3):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            SDEBlock(diffusion="multiplicative", sigma=0.5, num_steps=4, seed=7, gradient=gradient),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4, 4, 3)).astype("float32"), rng.integers(0, 2, 8)
    return model.fit(x, y, batch_size=4, epochs=steps, shuffle=False, verbose=0).history["loss"]


@SLOW_ON_JAX
def test_fit_with_pathwise_gives_the_same_losses_as_autodiff():
    np.testing.assert_allclose(fit_losses("pathwise"), fit_losses("autodiff"), rtol=1e-5)


@SLOW_ON_JAX
def test_pathwise_gradient_under_mixed_precision():
    autodiff, pathwise = twin_blocks("conv", "multiplicative", "mixed_float16")
    h0 = random_tensor(STATES["conv"], "float16", 0)
    cotangent = random_tensor(STATES["conv"], "float16", 1)
    _, grads_a = loss_gradients(autodiff, h0, cotangent)
    _, grads_p = loss_gradients(pathwise, h0, cotangent)
    assert all(keras.backend.standardize_dtype(g.dtype) == "float32" for g in grads_p[1:])
    assert max_relative_error(grads_a, grads_p) < 1e-2


@tensorflow_only
def test_pathwise_gradient_compiles_with_xla():
    import tensorflow as tf

    autodiff, pathwise = twin_blocks("conv", "dropout", "float32")
    h0 = random_tensor(STATES["conv"], "float32", 0)
    cotangent = random_tensor(STATES["conv"], "float32", 1)
    # XLA draws other numbers from a seed than TF's kernels: compare XLA with XLA.
    _, grads_a = tf.function(loss_gradients, jit_compile=True)(autodiff, h0, cotangent)
    _, grads_p = tf.function(loss_gradients, jit_compile=True)(pathwise, h0, cotangent)
    assert max_relative_error(grads_a, grads_p) < 1e-4


@tensorflow_only
def test_pathwise_training_leaves_tensorflow_options_unchanged():
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    autodiff, pathwise = twin_blocks("vector", "multiplicative", "float32")
    h0 = tf.ones(STATES["vector"])
    _, grads = tf.function(loss_gradients)(pathwise, h0, tf.ones_like(h0))
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert tf.config.optimizer.get_experimental_options() == before


@pytest.mark.slow
def test_pathwise_trains_the_cifar10_model_at_batch_32():
    """The size at which Grappler rewrote the weight-gradient sums into colliding temporary variables."""
    from keras_nsde.models import paper_classifier

    model = paper_classifier("cifar10", "multiplicative", gradient="pathwise")
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(32, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 32)
    losses = [float(model.train_on_batch(x, y)) for _ in range(2)]
    assert np.all(np.isfinite(losses))
