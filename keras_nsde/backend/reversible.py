"""The reversible Heun backward pass in keras.ops, shared by the JAX and PyTorch custom gradients.

The derivation is in `keras_nsde.backend.tensorflow.reversible` (the
TensorFlow twin, a graph loop): with F_n = (f_n, g_n) = (f, G)(y^_n, t_n),
Y_n = dL/dy_n and Y^_n = dL/dy^_n, the loop runs n = N - 1 .. 0,

    y^_n = 2 y_{n+1} - y^_{n+1} - f_{n+1} dt - g_{n+1} dW_n      (the algebraic inverse)
    Y_n  = Y_{n+1} + 2 Y^_{n+1}
    Y^_n = (phi_n . dF/dy^)(y^_n) - Y^_{n+1}
    dL/dw += (phi_n . dF/dw)(y^_n)

with phi_n = ([n >= 1] Y_n dt / 2 + Y^_{n+1} dt + Y_{n+1} dt / 2,
[n >= 1] Y_n dW_{n-1} / 2 + Y^_{n+1} dW_n + Y_{n+1} dW_n / 2), and returns
dL/dh0 = Y_0 + Y^_0. Each step evaluates (f, G) once, at y^_n, through the
backend's `vjp`, so only the last state is stored.
"""

from keras import ops

from keras_nsde.solvers.fixed_step import step_time


def forward(solver, terms, path, h0, t0, dt, num_steps, return_trajectory, loop):
    """(output, final state) of reversible Heun from h0: output y_N, or the `(N + 1,) + h0.shape` trajectory.

    `loop` is the backend's `integrate`; the final state (y_N, y^_N, f_N[, g_N])
    is what `backward` starts from. With the trajectory, the loop records
    (y_n, y^_n) and F_N = (f, G)(y^_N, t_N) is evaluated once more at the end.
    """
    step = solver.step_fn(terms, path, t0, dt)
    state0 = solver.initial_state(terms, path, h0, t0)
    if not return_trajectory:
        final = loop(step, state0, num_steps)
        return final[0], final
    pairs = loop(step, state0, num_steps, True, lambda state: ops.stack(state[:2]))  # (N + 1, 2) + h0.shape
    y_hat = pairs[-1, 1]
    fields = solver.vector_fields(terms, path is not None)(y_hat, step_time(y_hat, num_steps, t0, dt)[0])
    return pairs[:, 0], (pairs[-1, 0], y_hat, *(field for field in fields if field is not None))


def backward(solver, terms, path, final, upstream, t0, dt, num_steps, return_trajectory, vjp, loop=None):
    """(dL/dh0, [dL/dw per weight]) from the final state and the output's cotangent `upstream`.

    Args:
        vjp: `vjp(y_hat, t, phi) -> (fields, phi . dF/dy^, [phi . dF/dw])`, the
            backend's vector-Jacobian product of the non-None fields of
            `solver.vector_fields(terms, noisy)(y_hat, t)` (phi cut to as many).
        loop: `loop(lower, upper, body, carry)` as `keras.ops.fori_loop`
            (default: a Python loop); the backward pass is not differentiated.
    """
    noisy = path is not None
    y_hat_final = final[1]
    dtype = y_hat_final.dtype
    dt_h = ops.convert_to_tensor(dt, dtype=dtype)

    def increment(n):  # dW_n (dW_0 for n = -1, where its coefficient is 0); 0 without noise
        return path.increment(ops.maximum(n, 0)) if noisy else 0.0

    def field_vjp(y_hat, n, phi):
        return vjp(y_hat, step_time(y_hat, n, t0, dt)[0], phi)

    def body(i, carry):
        """Backward through step n = N - 1 - i: from state n + 1 and (Y, Y^)_{n+1} to state n and (Y, Y^)_n."""
        state, Y, Y_hat, dW, weight_grads = carry
        n = num_steps - 1 - i
        dW_previous = increment(n - 1)
        has_previous_step = ops.cast(n >= 1, dtype)
        upstream_n = upstream[n] if return_trajectory else 0.0
        y_hat, Y_n, phi = adjoint_step(state, Y, Y_hat, dW, dW_previous, has_previous_step, dt_h, noisy, upstream_n)
        fields, grad_y_hat, step_weight_grads = field_vjp(y_hat, n, phi)
        state = (previous_y(state, fields, dt_h, dW, noisy), y_hat, *fields)
        weight_grads = [total + grad for total, grad in zip(weight_grads, step_weight_grads)]
        return state, Y_n, grad_y_hat - Y_hat, dW_previous, weight_grads

    Y = upstream[num_steps] if return_trajectory else upstream
    dW = increment(num_steps - 1)
    _, Y_hat, weight_grads = field_vjp(y_hat_final, num_steps, [0.5 * dt_h * Y, 0.5 * dW * Y])
    carry = (tuple(final), Y, Y_hat, dW, list(weight_grads))
    if loop is None:
        for i in range(num_steps):
            carry = body(i, carry)
    else:
        carry = loop(0, num_steps, body, carry)
    _, Y, Y_hat, _, weight_grads = carry
    return Y + Y_hat, list(weight_grads)


def adjoint_step(state, Y, Y_hat, dW, dW_previous, has_previous_step, dt, noisy, upstream_n=0.0):
    """(y^_n, Y_n, phi_n) from state n + 1 = (y, y^, f[, g])_{n+1} and (Y, Y^)_{n+1} (any backend's tensors).

    `has_previous_step` is 1 for n >= 1 (y_n = y_{n-1} + ... reads F_n), else
    0; `upstream_n` is dL/dy_n from a trajectory output (0 otherwise).
    """
    y_next, y_hat_next, f_next = state[:3]
    g_next = state[3] if noisy else 0.0
    y_hat = 2.0 * y_next - y_hat_next - f_next * dt - g_next * dW
    Y_n = Y + 2.0 * Y_hat + upstream_n
    phi = [
        dt * Y_hat + 0.5 * dt * Y + has_previous_step * 0.5 * dt * Y_n,
        dW * Y_hat + 0.5 * dW * Y + has_previous_step * 0.5 * dW_previous * Y_n,
    ]
    return y_hat, Y_n, phi


def previous_y(state, fields, dt, dW, noisy):
    """y_n = y_{n+1} - (f_n + f_{n+1}) dt / 2 - (g_n + g_{n+1}) dW_n / 2, with `fields` = F_n at y^_n."""
    f_next, g_next = state[2], (state[3] if noisy else 0.0)
    f, g = fields[0], (fields[1] if noisy else 0.0)
    return state[0] - 0.5 * (f + f_next) * dt - 0.5 * (g + g_next) * dW
