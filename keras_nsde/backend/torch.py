"""The PyTorch backend: stateless sampling from seeded torch.Generators; the rest in keras.ops (`generic`)."""

import torch
from keras import ops

from keras_nsde import optional
from keras_nsde.backend import reversible
from keras_nsde.backend.generic import (  # noqa: F401
    compile_function,
    compile_stateful,
    group_norm,
    integrate,
    integrate_pathwise,
    random_shape,
    same_conv2d,
    size,
    stateless,
    trace,
)

MASK = (1 << 64) - 1


def seed(values):
    """A per-call seed, int64 of shape (2,)."""
    return torch.as_tensor(ops.convert_to_numpy(values), dtype=torch.int64)


def fold_in(seed, n):
    """(mix(seed), n): the seed of step n."""
    return torch.as_tensor([_signed(_mix(*(int(v) for v in seed))), int(n)], dtype=torch.int64)


def uniform(shape, seed, dtype):
    """Uniforms in [0, 1) from a torch.Generator seeded by the (2,) seed: the same seed, the same numbers."""
    device = ops.convert_to_tensor(0.0).device
    generator = torch.Generator(device=device)
    generator.manual_seed(_mix(*(int(v) for v in seed)) & ((1 << 63) - 1))
    return torch.rand(tuple(int(d) for d in shape), generator=generator, dtype=getattr(torch, dtype), device=device)


def _mix(a, b):
    """SplitMix64 of two 64-bit words: nearby (seed, step) pairs give unrelated generator seeds."""
    z = ((a & MASK) * 0x9E3779B97F4A7C15 + (b & MASK) + 0x632BE59BD9B4E019) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _signed(word):
    return word - (1 << 64) if word >= 1 << 63 else word


def replica_seed(seed):
    return seed


def executing_eagerly(x):
    return True


def integrate_reversible(solver, terms, path, h0, t0, dt, num_steps, return_trajectory=False):
    """Reversible Heun with its O(1)-memory gradient: a `torch.autograd.Function` of h0 and the weights.

    The weights the vector fields read (`terms.variables`) are the Function's
    inputs, so autograd routes their gradients; the backward pass is
    `keras_nsde.backend.reversible.backward` with `torch.autograd.grad` per step.
    """
    problem = (solver, terms, path, t0, dt, num_steps, return_trajectory)
    return _ReversibleHeun.apply(problem, h0, *(v.value for v in terms.variables))


class _ReversibleHeun(torch.autograd.Function):
    """Forward without a graph (only the last state is kept), backward by the reversible adjoint."""

    @staticmethod
    def forward(ctx, problem, h0, *values):
        solver, terms, path, t0, dt, num_steps, return_trajectory = problem
        output, final = reversible.forward(solver, terms, path, h0, t0, dt, num_steps, return_trajectory, integrate)
        ctx.problem, ctx.final, ctx.values = problem, final, values
        return output

    @staticmethod
    def backward(ctx, upstream):
        solver, terms, path, t0, dt, num_steps, return_trajectory = ctx.problem
        evaluate = solver.vector_fields(terms, path is not None)
        values = ctx.values

        def vjp(y_hat, t, phi):
            with torch.enable_grad():
                y_hat = y_hat.detach().requires_grad_()
                fields = [field for field in evaluate(y_hat, t) if field is not None]
                grads = torch.autograd.grad(fields, [y_hat, *values], phi[: len(fields)], allow_unused=True)
            grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, [y_hat, *values])]
            return [field.detach() for field in fields], grads[0], grads[1:]

        with torch.no_grad():
            grad_h0, grad_values = reversible.backward(
                solver, terms, path, ctx.final, upstream, t0, dt, num_steps, return_trajectory, vjp
            )
        return (None, grad_h0, *grad_values)


def weight_jvp(function, variables, direction):
    """(y, dy/dw v) for y = function() reading `variables`: torch.func.jvp with the weights passed explicitly."""
    return torch.func.jvp(stateless(function, variables), tuple(v.value for v in variables), tuple(direction))


def jacobian_products(function, x, v):
    """(J v, J^T J v) for J = d function / dx at x."""
    _, jv = torch.func.jvp(function, (x,), (v,))
    _, pullback = torch.func.vjp(function, x)
    return jv.detach(), pullback(jv)[0].detach()


def input_gradient(loss_fn, x):
    """d loss_fn(x) / dx for a scalar loss (the attacks' gradient hook), by `torch.autograd.grad`."""
    with torch.enable_grad():
        x = torch.as_tensor(x).detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(loss_fn(x), x)
    return gradient


def dormand_prince(drift_fn, h0, t0, t1, rtol, atol, times=None, variables=()):
    """Integrates dh = f(h, t) dt with torchdiffeq's `odeint_adjoint(method="dopri5")`.

    The gradient is torchdiffeq's adjoint: the adjoint ODE solved backwards
    from t1 (at the same tolerances), for h0 and the drift's weights
    `variables` (passed as `adjoint_params`, the tensors autograd routes the
    weight gradients to), as TensorFlow Probability's on TensorFlow.

    Returns:
        (h(t1), or the states at `times` stacked on axis 0; NFE), NFE being the
        drift evaluations of the forward solve, counted.
    """
    torchdiffeq = optional.require("torchdiffeq", extra="dopri5-torch")
    evaluations = [0]

    def vector_field(t, h):
        evaluations[0] += 1
        return drift_fn(h, t.to(h.dtype))

    grid = torch.tensor([t0, t1], dtype=h0.dtype, device=h0.device) if times is None else torch.as_tensor(times).to(h0)
    states = torchdiffeq.odeint_adjoint(
        vector_field, h0, grid, rtol=rtol, atol=atol, method="dopri5",
        adjoint_params=tuple(variable.value for variable in variables),
    )
    forward_evaluations = evaluations[0]  # the backward pass adds its own evaluations later
    return (states[-1] if times is None else states), forward_evaluations
