"""Exact gradients in O(1) memory: reversible Heun run backwards (Kidger, Foster, Li & Lyons, 2021), written once.

Forward variables (`keras_nsde.solvers.ReversibleHeun`), with
F_n = (f_n, g_n) = (f, G)(y^_n, t_n) and y^_0 = y_0 = h0:

    y^_{n+1} = 2 y_n - y^_n + f_n dt_n + g_n dW_n
    y_{n+1}  = y_n + (f_n + f_{n+1}) dt_n / 2 + (g_n + g_{n+1}) dW_n / 2

(dt_n = t_{n+1} - t_n: the grid may be irregular). For a loss L(y_N) write
Y_n = dL/dy_n and Y^_n = dL/dy^_n (totals, F_n counted as a function of
y^_n). F_n is used by y_n (n >= 1), y^_{n+1} and y_{n+1}, so its cotangent is

    phi_f,n = [n >= 1] Y_n dt_{n-1} / 2 + Y^_{n+1} dt_n + Y_{n+1} dt_n / 2
    phi_g,n = [n >= 1] Y_n dW_{n-1} / 2 + Y^_{n+1} dW_n + Y_{n+1} dW_n / 2

(the terms in n + 1 absent for n = N), and

    Y_n  = Y_{n+1} + 2 Y^_{n+1}
    Y^_n = (phi_n . dF/dy^)(y^_n) - Y^_{n+1}
    dL/dw = sum_n (phi_n . dF/dw)(y^_n),     dL/dh0 = Y_0 + Y^_0.

The backward loop runs n = N - 1 .. 0. Each iteration rebuilds state n from
state n + 1 by the solver's algebraic inverse, whose one evaluation of
(f, G) at y^_n is taken under the backend's `vjp`, giving phi_n . dF at the
same point: one evaluation and one VJP per step (plus one at y^_N), so a
training step costs about 4/3 of autodiff's and keeps O(1) states. The
increments are replayed from the per-call seed, so the result equals
autodiff through the same solver on the same path up to rounding.
"""

from keras import ops

from keras_nsde import backend
from keras_nsde.gradients.accumulate import FlatGradients


def reversible_solve(solver, problem, h0):
    """h(t1) or the trajectory of `ReversibleHeun` from h0, with the reversible adjoint as its gradient.

    Args:
        solver: a `ReversibleHeun`; drift and diffusion must be deterministic
            functions of (h, t) and the weights they read.
        problem: the `Problem` (its path is replayed backwards).
        h0: the initial state.
    """
    primitives = backend.get()
    num_steps, every_step = problem.num_steps, problem.saveat.every_step

    def forward(h0):
        def body(carry, n):
            state, count = carry
            return solver.step(problem, state, n), count + 1

        record = (lambda carry: solver.output(carry[0])) if every_step else None
        carry0 = (solver.init(problem, h0), ops.zeros((), "int32"))
        # Rolled on JAX: a scan XLA runs as a loop keeps memory independent of N.
        (final, count), outputs = primitives.loop(body, carry0, num_steps, record=record, unroll=False)
        return (outputs if every_step else solver.output(final)), (final, count)

    def backward(residuals, upstream, weights):
        final, count = residuals
        accumulate = FlatGradients(weights)
        dtype = final.y.dtype

        def step_size(n):  # dt_n, and dt_0 for n = -1, where its coefficient is 0
            return problem.time(ops.maximum(n, 0), dtype)[1]

        def increment(n):  # dW_n, and dW_0 for n = -1; a scalar 0 without noise
            return problem.increment(ops.maximum(n, 0)) if problem.noisy else ops.zeros((), dtype)

        def fields_vjp(y_hat, n, phi_f, phi_g):
            phi_g = phi_g if problem.noisy else ops.zeros((), dtype)  # g is a scalar 0 without noise
            return primitives.vjp(lambda y: solver.fields(problem, y, n), y_hat, weights, (phi_f, phi_g))

        def body(carry, i):
            """Backward through step n = N - 1 - i: from state n + 1 and (Y, Y^)_{n+1} to state n and (Y, Y^)_n."""
            state, Y, Y_hat, dt, dW, total = carry
            n = last - i
            dt_previous, dW_previous = step_size(n - 1), increment(n - 1)
            has_previous_step = ops.cast(n >= 1, dtype)
            y_hat = solver.previous_y_hat(state, dt, dW)
            Y_n = Y + 2.0 * Y_hat + (upstream[n] if every_step else 0.0)
            phi_f = dt * Y_hat + 0.5 * dt * Y + has_previous_step * 0.5 * dt_previous * Y_n
            phi_g = dW * Y_hat + 0.5 * dW * Y + has_previous_step * 0.5 * dW_previous * Y_n
            fields, grad_y_hat, grads = fields_vjp(y_hat, n, phi_f, phi_g)
            state = solver.previous_state(state, y_hat, fields, dt, dW)
            return state, Y_n, grad_y_hat - Y_hat, dt_previous, dW_previous, total + accumulate.flat(grads)

        # The last index comes from the forward loop's counter, not a constant: on TensorFlow, Grappler would
        # constant-fold a seeded draw at a constant index with TensorFlow's kernel, whose numbers differ from XLA's.
        last = count - 1
        Y = upstream[num_steps] if every_step else upstream
        dt, dW = step_size(last), increment(last)
        _, Y_hat, grads = fields_vjp(final.y_hat, count, 0.5 * dt * Y, 0.5 * dW * Y)
        carry = (final, Y, Y_hat, dt, dW, accumulate.flat(grads))
        _, Y, Y_hat, _, _, total = primitives.loop(body, carry, num_steps)[0]
        return Y + Y_hat, accumulate.split(total)

    return problem.finish(primitives.custom_vjp(forward, backward, problem.terms.variables)(h0))
