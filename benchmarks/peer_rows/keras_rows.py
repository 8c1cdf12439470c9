"""keras_nsde rows on the Keras backend of this process (KERAS_BACKEND): SDEBlock in a keras.Model.

The user's path: `model.compile(optimizer="adam", loss="mse")` and
`model.train_on_batch(h0, zeros)` (mse against zeros is mean(h(1)^2)), with
`jit_compile="auto"` (JAX: jax.jit; TensorFlow on CPU: tf.function without
XLA; PyTorch: eager). The "-ctl" rows take the same model through the custom
training loop of Keras' guide for the backend instead of the trainer.
"""

import keras
import numpy as np
from keras import ops

import keras_nsde
from keras_nsde.diffusions import Diffusion
from peer_rows import problem


@keras.saving.register_keras_serializable(package="keras_nsde_benchmarks")
class SoftplusDiagonal(Diffusion):
    """G_i(h) = softplus(a_i h_i + b_i): a learned diagonal diffusion, one (a, b) per state dimension."""

    def build(self, input_shape):
        self.a = self.add_weight(name="a", shape=(input_shape[-1],), initializer="zeros")
        self.b = self.add_weight(name="b", shape=(input_shape[-1],), initializer="zeros")
        self.built = True

    def call(self, h, t, f):
        return ops.softplus(ops.cast(self.a, h.dtype) * h + ops.cast(self.b, h.dtype))

    def derivative(self, h, t, f):
        a = ops.cast(self.a, h.dtype)
        return a * ops.sigmoid(a * h + ops.cast(self.b, h.dtype))


def model(weights, gradient):
    """A keras.Model around one SDEBlock, weights set from `problem.initial_weights`."""
    solver = "reversible_heun" if gradient == "reversible" else "euler_maruyama"
    block = keras_nsde.SDEBlock(
        drift=keras_nsde.MLPDrift(problem.STATE, hidden_units=problem.HIDDEN, hidden_layers=problem.HIDDEN_LAYERS),
        diffusion=SoftplusDiagonal(),
        t0=problem.T0,
        t1=problem.T1,
        num_steps=problem.NUM_STEPS,
        gradient=gradient,
        solver=solver,
        seed=0,
    )
    net = keras.Sequential([keras.Input((problem.STATE,)), block])
    dense_layers = block.drift.hidden + [block.drift.out]
    for layer, kernel, bias in zip(dense_layers, weights["kernels"], weights["biases"]):
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    block.diffusion.a.assign(weights["a"])
    block.diffusion.b.assign(weights["b"])
    return net


def trainer_row(gradient):
    def build(weights, h0):
        net = model(weights, gradient)
        net.compile(optimizer="adam", loss="mse")
        zeros = np.zeros_like(h0)
        return lambda: float(net.train_on_batch(h0, zeros))

    return build


def custom_loop_row(gradient):
    def build(weights, h0):
        net = model(weights, gradient)
        optimizer = keras.optimizers.Adam()
        optimizer.build(net.trainable_variables)
        return CUSTOM_LOOPS[keras.backend.backend()](net, optimizer, h0)

    return build


def torch_custom_loop(net, optimizer, h0):
    import torch

    x = ops.convert_to_tensor(h0)

    def step():
        loss = ops.mean(ops.square(net(x, training=True)))
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in net.trainable_weights], net.trainable_weights)
        return float(loss)

    return step


def jax_custom_loop(net, optimizer, h0):
    import jax

    def loss_and_updates(trainable, non_trainable, x):
        y, non_trainable = net.stateless_call(trainable, non_trainable, x, training=True)
        return ops.mean(ops.square(y)), non_trainable

    gradient = jax.value_and_grad(loss_and_updates, has_aux=True)

    @jax.jit
    def train_step(state, x):
        trainable, non_trainable, optimizer_state = state
        (loss, non_trainable), grads = gradient(trainable, non_trainable, x)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        return loss, (trainable, non_trainable, optimizer_state)

    state = [(
        [v.value for v in net.trainable_variables],
        [v.value for v in net.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )]
    x = jax.numpy.asarray(h0)

    def step():
        loss, state[0] = train_step(state[0], x)
        return float(loss)

    return step


def tensorflow_custom_loop(net, optimizer, h0):
    import tensorflow as tf

    x = tf.constant(h0)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(x, training=True)))
        optimizer.apply(tape.gradient(loss, net.trainable_variables), net.trainable_variables)
        return loss

    return lambda: float(train_step())


CUSTOM_LOOPS = {"torch": torch_custom_loop, "jax": jax_custom_loop, "tensorflow": tensorflow_custom_loop}


def rows(backend):
    """The keras_nsde rows of one backend, named keras_nsde-<backend>-<gradient>[-ctl]."""
    built = {}
    for gradient in ("autodiff", "reversible"):
        built[f"keras_nsde-{backend}-{gradient}"] = trainer_row(gradient)
        built[f"keras_nsde-{backend}-{gradient}-ctl"] = custom_loop_row(gradient)
    return built
