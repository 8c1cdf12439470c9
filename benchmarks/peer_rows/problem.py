"""The vector-state neural SDE every row of benchmarks/peers.py trains, defined once.

    dh = f(h, t; w) dt + G(h; a, b) o dW,   h(0) = h0 of shape (256, 32), t in [0, 1], 50 steps

    f: the MLP drift of `keras_nsde.MLPDrift(32, hidden_units=64, hidden_layers=2)`:
       x = tanh([h, t] W0 + b0), x = tanh([x, t] W1 + b1), f = [x, t] W2 + b2
       (33 -> 64 -> 64 -> 32, t appended as the last input column of every layer)
    G: a learned diagonal diffusion, G_i(h) = softplus(a_i h_i + b_i) per dimension

    loss = mean(h(1)^2), then one Adam step (learning rate 1e-3).

Every row starts from the same weights (`initial_weights`) and the same h0,
so the first losses agree up to the noise. Euler-Maruyama rows solve the Itô
SDE, reversible Heun rows the Stratonovich one (as torchsde requires).
"""

import numpy as np

STATE = 32
BATCH = 256
HIDDEN = 64
HIDDEN_LAYERS = 2
NUM_STEPS = 50
T0, T1 = 0.0, 1.0
DT = (T1 - T0) / NUM_STEPS
LEARNING_RATE = 1e-3
SIGMA0 = 0.1  # the diffusion starts at G = softplus(b) = 0.1 with a = 0


def initial_weights(seed=0):
    """The weights every row starts from, as NumPy float32 arrays.

    Returns:
        {"kernels": [(33, 64), (65, 64), (65, 32)], "biases": [(64,), (64,), (32,)],
        "a": (32,), "b": (32,)}; kernels are (inputs, outputs), the time row last.
    """
    rng = np.random.default_rng(seed)
    sizes = [STATE + 1] + [HIDDEN + 1] * HIDDEN_LAYERS
    outputs = [HIDDEN] * HIDDEN_LAYERS + [STATE]
    kernels = [glorot_uniform(rng, fan_in, fan_out) for fan_in, fan_out in zip(sizes, outputs)]
    biases = [np.zeros(fan_out, "float32") for fan_out in outputs]
    a = np.zeros(STATE, "float32")
    b = np.full(STATE, np.log(np.expm1(SIGMA0)), "float32")  # softplus(b) = SIGMA0
    return {"kernels": kernels, "biases": biases, "a": a, "b": b}


def glorot_uniform(rng, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype("float32")


def initial_state(seed=1):
    """h0, shape (BATCH, STATE), float32."""
    return np.random.default_rng(seed).standard_normal((BATCH, STATE)).astype("float32")
