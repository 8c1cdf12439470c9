"""The PyTorch backend: autograd.Function custom gradients, stateless sampling from seeded torch.Generators."""

import keras
import torch
from keras import ops

from keras_nsde import optional
from keras_nsde.backend.generic import (  # noqa: F401
    Weights,
    check_dtype,
    compile_function,
    compile_stateful,
    loop,
    random_shape,
    size,
    stateless,
    trace,
)

MASK = (1 << 64) - 1


def seed(values):
    """A per-call seed as two Python ints: PyTorch samples eagerly, so no tensor (and no `.item()` per step) is needed."""
    return tuple(int(v) for v in ops.convert_to_numpy(values))


def fold_in(seed, n):
    """(mix(seed), n): the seed of step n, two Python ints."""
    return (_signed(_mix(*seed)), int(n))


def uniform(shape, seed, dtype):
    """Uniforms in [0, 1) from a torch.Generator seeded by the (2,) seed: the same seed, the same numbers."""
    device = ops.convert_to_tensor(0.0).device
    shape = tuple(int(d) for d in shape)
    return torch.rand(shape, generator=_generator(seed, device), dtype=getattr(torch, dtype), device=device)


def normal(shape, seed, dtype):
    """Standard normals from a torch.Generator seeded by the (2,) seed: one `torch.randn` kernel.

    A fresh generator per seed keeps sampling stateless (step n's numbers
    depend on (seed, n) alone, so the pathwise and reversible gradients replay
    them); Box-Muller in keras.ops would be seven eager kernels per step.
    torch's CPU generator keeps the low 32 bits of its seed.
    """
    device = ops.convert_to_tensor(0.0).device
    shape = tuple(int(d) for d in shape)
    return torch.randn(shape, generator=_generator(seed, device), dtype=getattr(torch, dtype), device=device)


def _generator(seed, device):
    generator = torch.Generator(device=device)
    generator.manual_seed(_mix(*seed) & ((1 << 63) - 1))
    return generator


def _mix(a, b):
    """SplitMix64 of two 64-bit words: nearby (seed, step) pairs give unrelated generator seeds."""
    z = ((a & MASK) * 0x9E3779B97F4A7C15 + (b & MASK) + 0x632BE59BD9B4E019) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _signed(word):
    return word - (1 << 64) if word >= 1 << 63 else word


def accelerated(op, x):
    """PyTorch's faster drop-in for `op` on x, or None (then the keras.ops version runs).

    "same_conv2d": the convolution of the channels-last state through its NCHW view (`same_conv2d`).
    "affine": `torch.addmm` for a 2-D x (`affine`).
    """
    if op == "affine":
        return affine if x.ndim == 2 else None
    return same_conv2d if op == "same_conv2d" else None


def affine(x, kernel, bias):
    """x @ kernel + bias as one `torch.addmm`, the weights given as Keras variables or tensors."""
    return torch.addmm(getattr(bias, "value", bias), x, getattr(kernel, "value", kernel))


def same_conv2d(x, kernel):
    """conv2d(x, kernel), stride 1, 'same' zero padding, x `(batch, H, W, C_in)`, kernel `(k, k, C_in, C_out)`.

    x's NCHW view (a permute, no copy) has channels-last strides, which
    oneDNN convolves as they are and answers in the same layout, so the
    permute back is again a view. Keras' `ops.conv` copies x to contiguous
    NCHW and back, in the forward and again in the backward pass.
    """
    x, kernel = x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1)
    height, width = kernel.shape[2:]
    if height % 2 and width % 2:
        return torch.nn.functional.conv2d(x, kernel, padding="same").permute(0, 2, 3, 1)
    # An even kernel: Keras' 'same' pads the extra row and column after, explicitly here.
    padding = ((width - 1) // 2, width // 2, (height - 1) // 2, height // 2)
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, padding), kernel).permute(0, 2, 3, 1)


def replica_seed(seed):
    return seed


def executing_eagerly(x):
    return True


def custom_vjp(forward, backward, variables):
    """A function of h0 whose backward pass is `backward`, as a `torch.autograd.Function`.

    `forward(h0) -> (output, residuals)` runs without recording a graph;
    `backward(residuals, upstream, weights) -> (dL/dh0, [dL/dw per weight])`.
    The weights the function reads (`variables`) are the Function's inputs,
    so autograd routes their gradients.
    """
    variables = list(variables)

    def function(h0):
        return _CustomVJP.apply((forward, backward, variables), h0, *(v.value for v in variables))

    return function


class _CustomVJP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, functions, h0, *values):
        forward, backward, variables = functions
        output, residuals = forward(h0)
        ctx.backward, ctx.residuals, ctx.weights = backward, residuals, Weights(variables, list(values))
        return output

    @staticmethod
    def backward(ctx, upstream):
        with torch.no_grad():
            grad_h0, grad_weights = ctx.backward(ctx.residuals, upstream, ctx.weights)
        return (None, grad_h0, *grad_weights)


def vjp(function, x, weights, cotangent):
    """(function(x), cotangent . d function/dx, [cotangent . d function/dw]) by `torch.autograd.grad`.

    The function reads each weight as its value in `weights` (a
    `keras.StatelessScope`), as on JAX; `x` and the output may be nested
    structures; an output that reads neither x nor a weight (additive noise,
    G = sigma) contributes nothing.
    """
    inputs = [leaf.detach().requires_grad_() for leaf in keras.tree.flatten(x)]
    values = [value.detach().requires_grad_() for value in weights.values]
    with torch.enable_grad():
        outputs = stateless(lambda: function(keras.tree.pack_sequence_as(x, inputs)), weights.variables)(*values)
        pairs = [
            (output, weight)
            for output, weight in zip(keras.tree.flatten(outputs), keras.tree.flatten(cotangent))
            if output.requires_grad
        ]
        sources = inputs + values
        grads = [None] * len(sources)
        if pairs:
            targets, cotangents = zip(*pairs)
            grads = torch.autograd.grad(targets, sources, cotangents, allow_unused=True)
    grads = [torch.zeros_like(source) if grad is None else grad for grad, source in zip(grads, sources)]
    outputs = keras.tree.map_structure(lambda output: output.detach(), outputs)
    return outputs, keras.tree.pack_sequence_as(x, grads[: len(inputs)]), grads[len(inputs) :]


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
