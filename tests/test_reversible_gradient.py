"""The reversible gradient (Reversible Heun run backwards, O(1) states) on every backend, against autodiff.

TensorFlow: a tf.custom_gradient graph loop; JAX: a jax.custom_vjp; PyTorch:
a torch.autograd.Function, the last two sharing `keras_nsde.backend.reversible`.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import SDEBlock, diffusions, solvers
from tests.harness import value_and_gradients

pytestmark = pytest.mark.all_backends

DIFFUSIONS = {
    "none": lambda: "none",
    "additive": lambda: diffusions.Additive(0.3),  # G = sigma reads neither the state nor a weight
    "additive_learnable": lambda: diffusions.Additive(0.3, learnable=True),
    "multiplicative": lambda: diffusions.Multiplicative(0.6),
    "dropout": lambda: diffusions.Dropout(0.6),
}
STATES = {"conv": (2, 4, 4, 3), "vector": (3, 5)}


def twin_blocks(state, diffusion, interpretation="stratonovich", **kwargs):
    """An autodiff and a reversible block, both reversible Heun, with the same weights and seed."""
    blocks = []
    for gradient in ("autodiff", "reversible"):
        block = SDEBlock(
            diffusion=DIFFUSIONS[diffusion](), num_steps=6, seed=1, gradient=gradient,
            solver=solvers.ReversibleHeun(interpretation), **kwargs,
        )
        block.build((None,) + STATES[state][1:])
        blocks.append(block)
    blocks[1].set_weights(blocks[0].get_weights())
    return blocks


def gradients(block, h0, cotangent):
    noise_seed = np.array([3, 9], "int32") if block.diffusion.is_noisy else None

    def loss(h):
        return ops.sum(ops.convert_to_tensor(cotangent) * block(h, noise_seed=noise_seed, training=True))

    return [ops.convert_to_numpy(g) for g in value_and_gradients(loss, block, h0)]


def assert_close(reversible, autodiff, rtol=1e-4):
    assert len(reversible) == len(autodiff)
    largest = max(np.abs(g).max() for g in autodiff)
    for got, want in zip(reversible, autodiff):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * largest)


@pytest.mark.parametrize("state", ["conv", "vector"])
@pytest.mark.parametrize("diffusion", list(DIFFUSIONS))
def test_reversible_gradient_equals_autodiff_through_the_same_solver(diffusion, state):
    """d loss / d (h0, weights), float32: the weights of the drift and of a learnable diffusion included."""
    keras.utils.set_random_seed(0)
    autodiff, reversible = twin_blocks(state, diffusion)
    rng = np.random.default_rng(0)
    h0, cotangent = (rng.normal(size=STATES[state]).astype("float32") for _ in range(2))
    assert_close(gradients(reversible, h0, cotangent), gradients(autodiff, h0, cotangent))


def test_reversible_gradient_with_the_ito_interpretation_and_a_trajectory_output():
    keras.utils.set_random_seed(0)
    autodiff, reversible = twin_blocks("vector", "multiplicative", interpretation="ito", return_trajectory=True)
    rng = np.random.default_rng(1)
    h0, cotangent = rng.normal(size=(3, 5)).astype("float32"), rng.normal(size=(3, 7, 5)).astype("float32")
    assert_close(gradients(reversible, h0, cotangent), gradients(autodiff, h0, cotangent))


@pytest.mark.parametrize("diffusion", ["multiplicative", "additive"])
def test_reversible_block_trains_like_autodiff(diffusion):
    """Same train_on_batch losses (relative 1e-4) over 3 steps, compiled as each backend compiles fit."""
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 8)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")
    losses = []
    for gradient in ("autodiff", "reversible"):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((6, 6, 8)),
            SDEBlock(diffusion=diffusion, sigma=0.3, num_steps=4, seed=2, solver="reversible_heun", gradient=gradient),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ])
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        losses.append([float(model.train_on_batch(x, y)) for _ in range(3)])
    assert losses[0][0] != losses[0][-1]  # the weights moved
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


def test_reversible_gradient_under_mixed_precision():
    """float16 compute with float32 weights: the backward pass sees the weights the forward pass saw."""
    keras.utils.set_random_seed(0)
    autodiff, reversible = twin_blocks("vector", "multiplicative", dtype="mixed_float16")
    rng = np.random.default_rng(0)
    h0, cotangent = (rng.normal(size=STATES["vector"]).astype("float16") for _ in range(2))
    grads_a, grads_r = gradients(autodiff, h0, cotangent), gradients(reversible, h0, cotangent)
    assert all(g.dtype == np.float32 for g in grads_r[1:])
    largest = max(np.abs(g).max() for g in grads_a)
    assert max(np.abs(a - r).max() for a, r in zip(grads_a, grads_r)) < 2e-2 * largest
