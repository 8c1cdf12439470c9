"""LatentSDE against torchsde's latent SDE example model: the same weights and Brownian increments give the same ELBO and gradients.

torchsde's model is benchmarks/latent_sde_vs_torchsde.py's rewrite of
torchsde's examples/latent_sde_lorenz.py; its weights are copied into a
LatentSDE with `copy_torchsde_weights`, and both are driven by one array of
Brownian increments on LatentSDE's grid (two Euler steps per observation
interval). torchsde's Euler step asks its Brownian motion for W(t_b) - W(t_a);
the fake Brownian motion below returns the array's increment of the step that
starts at t_a (and 0 for the sliver of a step that float32 rounding of the
accumulated time adds before t1).
"""

import os
import sys

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import brownian
from keras_nsde.models import LatentSDE
from keras_nsde.models.latent_sde import ZeroPaddedPath
from tests.harness import value_and_gradients

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))

pytestmark = pytest.mark.all_backends

BATCH, TIMES, CONTEXT, HIDDEN, SCALE = 6, 8, 4, 16, 0.1


def lorenz_like_sequences():
    rng = np.random.default_rng(0)
    times = np.linspace(0.0, 1.0, TIMES)
    walk = np.cumsum(rng.normal(scale=0.3, size=(BATCH, TIMES, 3)), axis=1)
    return walk.astype("float32"), times


class FixedIncrements(brownian.BrownianPath):
    """Step n's increment is row n of a `(num_steps, batch, d)` array."""

    def __init__(self, increments):
        self.increments, self.num_steps = ops.convert_to_tensor(increments), len(increments)

    def increment(self, n):
        return ops.take(self.increments, n, axis=0)


def torchsde_reference(torch, torchsde, times, step, increments, seed=0):
    """torchsde's example model (its initial weights for `seed`), driven by `increments`, with the context rule in exact arithmetic.

    torchsde's f reads ctx[searchsorted(ts, t, right=True)]: the context of
    the next observation time. Its time is a float32 sum of steps, which
    lands a rounding below t_k at some grid points and then reads ctx[k];
    LatentSDE compares with a tolerance, so here f does the same.
    """
    import latent_sde_vs_torchsde as benchmark

    torch.manual_seed(seed)
    model = benchmark.torchsde_model(torch, torchsde)(3, CONTEXT, HIDDEN, step)

    def f(t, y):
        ts, ctx = model._ctx
        index = min(int(np.sum(times <= float(t) + 0.01 * step)), len(times) - 1)
        return model.f_net(torch.cat((y, ctx[index]), dim=1))

    model.f = f

    class Increments(torchsde.BrownianInterval.__mro__[1]):  # torchsde's BaseBrownian
        dtype, device, shape = torch.float32, torch.device("cpu"), (BATCH, 4)  # + the log-ratio channel
        levy_area_approximation = "none"

        def __call__(self, ta, tb=None, return_U=False, return_A=False):
            if float(tb - ta) < 0.5 * step:
                return torch.zeros(self.shape)
            n = int(round(float(ta) / step))
            return torch.cat([torch.tensor(increments[n]), torch.zeros(BATCH, 1)], dim=1)

        def __repr__(self):
            return "Increments"

    def negative_elbo(xs):
        """-log p(x | z) + path KL, each summed over time (and dimensions) and averaged over the batch."""
        xs, ts = torch.tensor(xs).transpose(0, 1), torch.tensor(times, dtype=torch.float32)
        ctx = torch.flip(model.encoder(torch.flip(xs, dims=(0,))), dims=(0,))
        model._ctx = (ts, ctx)
        zs, log_ratio = torchsde.sdeint(model, xs[0], ts, dt=step, logqp=True, method="euler", bm=Increments())
        log_pxs = torch.distributions.Normal(loc=zs, scale=SCALE).log_prob(xs).sum(dim=(0, 2)).mean()
        return log_pxs, log_ratio.sum(dim=0).mean()

    return model, negative_elbo


def test_same_weights_and_increments_give_torchsdes_elbo_and_gradients():
    torch = pytest.importorskip("torch")
    torchsde = pytest.importorskip("torchsde")
    import latent_sde_vs_torchsde as benchmark

    xs, times = lorenz_like_sequences()
    step = float(times[1] - times[0]) / 2
    increments = (np.random.default_rng(1).normal(size=(2 * (TIMES - 1), BATCH, 3)) * np.sqrt(step)).astype("float32")
    torch_model, torch_pieces = torchsde_reference(torch, torchsde, times, step, increments)
    log_pxs, log_ratio = torch_pieces(xs)
    (log_ratio - log_pxs).backward()

    model = LatentSDE(times, latent_dim=3, context_dim=CONTEXT, hidden_units=HIDDEN, observation_scale=SCALE,
                      max_step=step, diffusion_floor=0.0, initial_state="observed", seed=0)
    model.build((None, TIMES, 3))
    benchmark.copy_torchsde_weights(torch_model, model)
    model.brownian_path = lambda seed, z0, grid, padding=0: ZeroPaddedPath(FixedIncrements(increments), padding)

    def negative_elbo(x):
        out = model(x, training=True)
        return ops.mean(out["path_kl"]) - ops.mean(out["log_likelihood"])

    out = model(ops.convert_to_tensor(xs), training=True)
    np.testing.assert_allclose(float(ops.convert_to_numpy(ops.mean(out["log_likelihood"]))), log_pxs.item(), rtol=1e-5)
    np.testing.assert_allclose(float(ops.convert_to_numpy(ops.mean(out["path_kl"]))), log_ratio.item(), rtol=1e-4)
    grads = value_and_gradients(negative_elbo, model, ops.convert_to_tensor(xs))[1:]

    # The weights' gradients, mapped back to torchsde's parameters by copying them as weights would be.
    gradient_model = LatentSDE(times, latent_dim=3, context_dim=CONTEXT, hidden_units=HIDDEN, observation_scale=SCALE,
                               max_step=step, diffusion_floor=0.0, initial_state="observed", seed=0)
    gradient_model.build((None, TIMES, 3))
    for parameter in torch_model.parameters():
        parameter.data = parameter.grad.clone()
    benchmark.copy_torchsde_weights(torch_model, gradient_model)
    checked = 0
    for variable, grad, expected in zip(model.trainable_variables, grads, gradient_model.trainable_variables):
        grad, expected = np.asarray(ops.convert_to_numpy(grad)), np.asarray(ops.convert_to_numpy(expected))
        if variable is model.encoder_gru.cell.kernel:  # rows 3-5 read the missing-value indicator: 0 on complete data
            np.testing.assert_array_equal(grad[3:], 0.0)
        np.testing.assert_allclose(grad, expected, rtol=0, atol=2e-5 * np.max(np.abs(expected)), err_msg=variable.path)
        checked += 1
    assert checked == len(model.trainable_variables) == 21  # GRU 3, context 2, drifts 2 x 6, diffusion 4
