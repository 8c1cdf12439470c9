"""JAX rows: the hand-written `lax.scan` loop (JAX's floor) and diffrax, each one jitted training step.

Both take the same Adam: optax's when it is installed (the `bench` extra),
otherwise `adam` below, the same update written out; `OPTIMIZER` says which.
"""

import jax
import jax.numpy as jnp

from peer_rows import problem

try:
    import optax
except ImportError:
    optax = None

OPTIMIZER = "optax.adam" if optax is not None else "hand-written Adam (optax not installed)"


def parameters(weights):
    return {
        "kernels": [jnp.asarray(k) for k in weights["kernels"]],
        "biases": [jnp.asarray(b) for b in weights["biases"]],
        "a": jnp.asarray(weights["a"]),
        "b": jnp.asarray(weights["b"]),
    }


def drift(params, t, h):
    """f(t, h) for h of shape (..., 32): the time column appended to every layer's input."""
    time_column = jnp.broadcast_to(jnp.asarray(t, h.dtype), h.shape[:-1] + (1,))
    x = h
    for kernel, bias in zip(params["kernels"][:-1], params["biases"][:-1]):
        x = jnp.tanh(jnp.concatenate([x, time_column], axis=-1) @ kernel + bias)
    return jnp.concatenate([x, time_column], axis=-1) @ params["kernels"][-1] + params["biases"][-1]


def diffusion(params, h):
    """G(h) = softplus(a h + b), elementwise."""
    return jax.nn.softplus(params["a"] * h + params["b"])


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """(init, update) of Adam, with optax's signature: update(grads, state) -> (updates, state)."""
    if optax is not None:
        optimizer = optax.adam(learning_rate, b1, b2, eps)
        return optimizer.init, optimizer.update

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return jnp.zeros((), "int32"), zeros, zeros

    def update(grads, state):
        count, m, v = state
        count = count + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        m_scale, v_scale = 1 / (1 - b1**count), 1 / (1 - b2**count)
        updates = jax.tree_util.tree_map(
            lambda m, v: -learning_rate * m * m_scale / (jnp.sqrt(v * v_scale) + eps), m, v
        )
        return updates, (count, m, v)

    return init, update


def training_step(weights, h0, solve):
    """step() -> loss for a jitted (params, opt_state, key) -> (params, opt_state, key, loss) with loss = mean(solve^2)."""
    init, update = adam(problem.LEARNING_RATE)
    params = parameters(weights)
    h0 = jnp.asarray(h0)

    @jax.jit
    def train_step(params, opt_state, key):
        key, noise_key = jax.random.split(key)
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(jnp.square(solve(p, h0, noise_key))))(params)
        updates, opt_state = update(grads, opt_state)
        params = jax.tree_util.tree_map(jnp.add, params, updates)
        return params, opt_state, key, loss

    state = [params, init(params), jax.random.key(0)]

    def step():
        params, opt_state, key, loss = train_step(*state)
        state[:] = params, opt_state, key
        return float(loss)

    step.jitted = lambda: train_step.lower(*state).compile()
    return step


def jax_loop(weights, h0):
    """Euler-Maruyama as a `lax.scan` over the 50 steps, increments drawn as one (50, 256, 32) normal."""

    def solve(params, h0, key):
        dW = jax.random.normal(key, (problem.NUM_STEPS,) + h0.shape) * problem.DT**0.5
        ts = problem.T0 + problem.DT * jnp.arange(problem.NUM_STEPS)

        def body(h, inputs):
            t, dW_n = inputs
            return h + drift(params, t, h) * problem.DT + diffusion(params, h) * dW_n, None

        return jax.lax.scan(body, h0, (ts, dW))[0]

    return training_step(weights, h0, solve)


def diffrax_euler(adjoint_name):
    """diffrax.diffeqsolve(Euler, dt0=1/50) with a VirtualBrownianTree (tol dt/2), vmapped over the batch as in
    diffrax's examples: the diagonal G as a `lineax.DiagonalLinearOperator` of a `ControlTerm`."""

    def build(weights, h0):
        import diffrax
        import lineax

        adjoint = {"recursive": diffrax.RecursiveCheckpointAdjoint, "direct": diffrax.DirectAdjoint}[adjoint_name]()

        def solve_one(params, y0, key):
            brownian = diffrax.VirtualBrownianTree(
                problem.T0, problem.T1, tol=problem.DT / 2, shape=(problem.STATE,), key=key
            )
            terms = diffrax.MultiTerm(
                diffrax.ODETerm(lambda t, y, params: drift(params, t, y)),
                diffrax.ControlTerm(
                    lambda t, y, params: lineax.DiagonalLinearOperator(diffusion(params, y)), brownian
                ),
            )
            solution = diffrax.diffeqsolve(
                terms, diffrax.Euler(), problem.T0, problem.T1, problem.DT, y0, args=params,
                saveat=diffrax.SaveAt(t1=True), adjoint=adjoint,
            )
            return solution.ys[-1]

        def solve(params, h0, key):
            keys = jax.random.split(key, h0.shape[0])
            return jax.vmap(solve_one, in_axes=(None, 0, 0))(params, h0, keys)

        return training_step(weights, h0, solve)

    return build


ROWS = {
    "jax-loop": jax_loop,
    "diffrax": diffrax_euler("recursive"),
    "diffrax-direct": diffrax_euler("direct"),
}
