"""Exact gradients in O(1) memory: reversible Heun run backwards (Kidger, Foster, Li & Lyons, 2021).

Forward variables (see `keras_nsde.solvers.reversible_heun`), with
F_n = (f_n, g_n) = (f, G)(y^_n, t_n) and y^_0 = y_0 = h0:

    y^_{n+1} = 2 y_n - y^_n + f_n dt + g_n dW_n
    y_{n+1}  = y_n + (f_n + f_{n+1}) dt / 2 + (g_n + g_{n+1}) dW_n / 2

For a loss L(y_N) write Y_n = dL/dy_n and Y^_n = dL/dy^_n (totals, F_n
counted as a function of y^_n). F_n is used by y_n (n >= 1), y^_{n+1} and
y_{n+1}, so its cotangent is

    phi_f,n = [n >= 1] Y_n dt / 2 + Y^_{n+1} dt + Y_{n+1} dt / 2
    phi_g,n = [n >= 1] Y_n dW_{n-1} / 2 + Y^_{n+1} dW_n + Y_{n+1} dW_n / 2

(the terms in n + 1 absent for n = N), and

    Y_n  = Y_{n+1} + 2 Y^_{n+1}
    Y^_n = (phi_n . dF/dy^)(y^_n) - Y^_{n+1}
    dL/dw = sum_n (phi_n . dF/dw)(y^_n),     dL/dh0 = Y_0 + Y^_0.

The backward loop runs n = N - 1 .. 0. Each iteration rebuilds state n from
state n + 1 by the algebraic inverse, whose one evaluation of (f, G) at y^_n
is recorded on a tape and gives the vector-Jacobian product phi_n . dF at
the same point: one evaluation and one VJP per step (plus one at y^_N), so a
training step costs about 4/3 of autodiff's and keeps O(1) states.
"""

import tensorflow as tf

from keras_nsde.backend.reversible import adjoint_step, previous_y
from keras_nsde.backend.tensorflow.accumulate import WeightGradients, tapes_paused
from keras_nsde.solvers.fixed_step import step_time


def integrate_reversible(solver, terms, path, h0, t0, dt, num_steps, return_trajectory=False):
    """Runs reversible Heun from h0 with the reversible custom gradient.

    Args:
        solver: a `ReversibleHeun`.
        terms: the `SDETerms`; drift and diffusion must be deterministic
            functions of (h, t) and the variables they read.
        path: the `BrownianPath` (replayed in the backward pass), or None (ODE).
        h0: initial state.
        t0, dt, num_steps: the time grid t_n = t0 + n dt.
        return_trajectory: return `(N + 1,) + h0.shape` states y_n instead of y_N.

    Returns:
        y_N or the trajectory, with gradients to h0 and to every variable the
        vector fields read.
    """
    noisy = path is not None
    evaluate = solver.vector_fields(terms, noisy)
    step = solver.step_fn(terms, path, t0, dt)

    @tf.custom_gradient
    def solve(h0):
        with tapes_paused():
            state = solver.initial_state(terms, path, h0, t0)
            trajectory = tf.TensorArray(h0.dtype, size=num_steps + 1, element_shape=h0.shape).write(0, h0)

            def body(n, state, trajectory):
                state = step(state, n)
                return n + 1, state, trajectory.write(n + 1, state[0]) if return_trajectory else trajectory

            steps_done, final, trajectory = tf.while_loop(
                lambda n, *_: n < num_steps, body, (tf.constant(0), state, trajectory), maximum_iterations=num_steps
            )
        output = trajectory.stack() if return_trajectory else final[0]

        def grad_fn(upstream, variables=None):
            accumulate = WeightGradients(variables or [])

            def vjp(y_hat, n, phi):
                """(f, G)(y^_n, t_n) and phi . d(f, G) with respect to y^_n and the weights."""
                with tf.GradientTape() as tape:
                    tape.watch(y_hat)
                    fields = [field for field in evaluate(y_hat, step_time(y_hat, n, t0, dt)[0]) if field is not None]
                grads = tape.gradient(fields, [y_hat] + accumulate.variables, output_gradients=phi[: len(fields)])
                return fields, grads[0], accumulate.flat(grads[1:])

            def increment(n):  # dW_n (dW_0 for n = -1, where its coefficient is 0); a scalar 0 without noise
                return path.increment(tf.maximum(n, 0)) if noisy else tf.zeros([], h0.dtype)

            dt_h = tf.constant(dt, h0.dtype)
            Y = upstream[num_steps] if return_trajectory else upstream
            # The step index comes from the forward loop, not a constant: Grappler would constant-fold a
            # seeded draw at a constant index with TensorFlow's kernel, whose numbers differ from XLA's.
            last = steps_done - 1
            dW_last = increment(last)
            _, Y_hat, weight_grads = vjp(final[1], steps_done, [0.5 * dt_h * Y, 0.5 * dW_last * Y])

            def body(n, state, Y, Y_hat, dW, weight_grads):
                """Backward through step n: from state n + 1 and (Y, Y^)_{n+1} to state n and (Y, Y^)_n."""
                dW_previous = increment(n - 1)
                has_previous_step = tf.cast(n >= 1, h0.dtype)
                upstream_n = upstream[n] if return_trajectory else 0.0
                y_hat, Y_n, phi = adjoint_step(state, Y, Y_hat, dW, dW_previous, has_previous_step, dt_h, noisy, upstream_n)
                fields, grad_y_hat, step_weight_grads = vjp(y_hat, n, phi)
                y = previous_y(state, fields, dt_h, dW, noisy)
                return n - 1, (y, y_hat, *fields), Y_n, grad_y_hat - Y_hat, dW_previous, weight_grads + step_weight_grads

            _, _, Y, Y_hat, _, weight_grads = tf.while_loop(
                lambda n, *_: n >= 0,
                body,
                (last, final, Y, Y_hat, dW_last, weight_grads),
                maximum_iterations=num_steps,
                parallel_iterations=1,  # no look-ahead: later iterations' draws and temporaries would stay alive
            )
            return Y + Y_hat, accumulate.split(weight_grads)

        return output, grad_fn

    return solve(h0)
