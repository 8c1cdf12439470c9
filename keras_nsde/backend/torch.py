"""The PyTorch backend: stateless sampling from seeded torch.Generators; the rest in keras.ops (`generic`)."""

import torch
from keras import ops

from keras_nsde.backend import unsupported
from keras_nsde.backend.generic import (  # noqa: F401
    compile_function,
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


def integrate_reversible(*args, **kwargs):
    raise unsupported("gradient='reversible'", "torch")


def weight_jvp(function, variables, direction):
    """(y, dy/dw v) for y = function() reading `variables`: torch.func.jvp with the weights passed explicitly."""
    return torch.func.jvp(stateless(function, variables), tuple(v.value for v in variables), tuple(direction))


def jacobian_products(function, x, v):
    """(J v, J^T J v) for J = d function / dx at x."""
    _, jv = torch.func.jvp(function, (x,), (v,))
    _, pullback = torch.func.vjp(function, x)
    return jv.detach(), pullback(jv)[0].detach()
