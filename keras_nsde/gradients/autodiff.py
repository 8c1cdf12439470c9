"""Autodiff: backpropagation through the time loop, every step's activations kept (O(N) memory)."""

from keras_nsde import backend


def autodiff_solve(solver, problem, h0):
    """h(t1), or the trajectory (`problem.saveat`), of `solver` from h0, differentiated by the backend's autodiff."""
    state0 = solver.init(problem, h0)
    record = solver.output if problem.saveat.every_step else None
    final, outputs = backend.get().loop(
        lambda state, n: solver.step(problem, state, n), state0, problem.num_steps, record=record, lookahead=True
    )
    return problem.finish(outputs if problem.saveat.every_step else solver.output(final))
