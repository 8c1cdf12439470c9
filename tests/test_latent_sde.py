"""LatentSDE on every backend: the ELBO's pieces against hand computations, masks, fit, saving, sampling, annealing."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import brownian
from keras_nsde.models import DiagonalDiffusionNet, LatentSDE
from keras_nsde.models.latent_sde import PosteriorFields, brownian_normal
from keras_nsde.models.likelihoods import diagonal_gaussian_kl, masked_log_likelihood
from keras_nsde.solvers import Grid
from tests.gradient_checks import max_relative_error
from tests.harness import value_and_gradients

pytestmark = pytest.mark.all_backends

TIMES = np.array([0.0, 0.2, 0.3, 0.7])  # irregular


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x), "float64")


def sequences(batch=3, times=TIMES, dim=2, seed=0):
    """Noisy sines and cosines at `times`, `(batch, T, dim)`."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(batch, 1, 1))
    waves = np.sin(2 * np.pi * times[None, :, None] + phase + np.arange(dim) * np.pi / 2)
    return (waves + 0.05 * rng.normal(size=waves.shape)).astype("float32")


def small_model(times=TIMES, dim=2, **kwargs):
    keras.utils.set_random_seed(0)
    options = dict(latent_dim=2, context_dim=3, hidden_units=8, observation_scale=0.1, seed=1)
    model = LatentSDE(times, **{**options, **kwargs})
    model.build((None, len(times), dim))
    return model


# The ELBO's pieces.


def test_gaussian_and_laplace_log_likelihoods_with_a_mask_match_the_densities():
    x = np.array([[[0.3, np.nan], [-1.0, 2.0]], [[np.nan, np.nan], [0.5, 0.0]]], "float32")
    mean = np.array([[[0.0, 9.0], [-0.5, 1.0]], [[9.0, 9.0], [0.5, 1.0]]], "float32")
    scale = np.array([0.5, 2.0], "float32")
    observed = np.isfinite(x)
    gaussian = -0.5 * ((x - mean) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)
    laplace = -np.abs(x - mean) / scale - np.log(2 * scale)
    for name, density in (("gaussian", gaussian), ("laplace", laplace)):
        expected = np.where(observed, density, 0.0).sum(axis=(1, 2))
        actual = numpy(masked_log_likelihood(ops.convert_to_tensor(x), mean, scale, name))
        np.testing.assert_allclose(actual, expected, rtol=1e-6)
    # The first sequence by hand: N(0.3; 0, 0.5^2) + N(-1; -0.5, 0.5^2) + N(2; 1, 2^2).
    by_hand = -0.5 * (0.36 + 1.0 + 0.25) - 2 * math.log(0.5) - math.log(2.0) - 1.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(numpy(masked_log_likelihood(ops.convert_to_tensor(x), mean, scale))[0], by_hand, rtol=1e-6)


def test_kl_of_two_diagonal_gaussians_matches_the_closed_form():
    # KL(N(1, 0.5^2) || N(0, 1)) = log 2 + (0.25 + 1) / 2 - 1/2; KL(N(0, 1) || N(1, 2^2)) = log 2 + (1 + 1) / 8 - 1/2.
    tensor = ops.convert_to_tensor
    mean_q, log_std_q = tensor([[1.0, 0.0]]), tensor(np.log([[0.5, 1.0]]).astype("float32"))
    mean_p, log_std_p = tensor([0.0, 1.0]), tensor(np.log([1.0, 2.0]).astype("float32"))
    expected = (math.log(2) + 0.625 - 0.5) + (math.log(2) + 0.25 - 0.5)
    np.testing.assert_allclose(numpy(diagonal_gaussian_kl(mean_q, log_std_q, mean_p, log_std_p)), [expected], rtol=1e-6)
    np.testing.assert_allclose(numpy(diagonal_gaussian_kl(mean_p, log_std_p, mean_p, log_std_p)), 0.0, atol=1e-7)


def posterior_by_hand(model, x, increments=None):
    """Euler steps on the model's grid with its layers called one by one: (reconstruction, log p(x|z), path KL, z0 KL)."""
    ctx, mean, log_std = model.encode(x)
    z = mean if increments is None or log_std is None else mean + ops.exp(log_std) * increments[0]
    grid = Grid.through(model.times, model.max_step)
    grid_times, saved = grid.time_points(), grid.index(model.times)
    dts = np.diff(grid_times)
    states, kl = [], 0.0
    for n in range(grid.num_steps + 1):
        if n in saved:
            states.append(z)
        if n == grid.num_steps:
            break
        k = min(int(np.searchsorted(model.times, grid_times[n] + 1e-9, side="right")), len(model.times) - 1)  # next t_k > t_n
        f = model.posterior_drift(ops.concatenate([z, ctx[:, k]], axis=-1))
        g = model.diffusion(z)
        kl = kl + 0.5 * ops.sum(ops.square((f - model.prior_drift(z)) / g), axis=-1) * dts[n]
        z = z + f * dts[n] + (0.0 if increments is None else g * increments[1][n])
    reconstruction = model.decoder(ops.stack(states, axis=1))
    log_px = masked_log_likelihood(x, reconstruction, model.observation_scales())
    if log_std is None:  # an observed start: no q(z0), no initial KL
        return reconstruction, log_px, kl, ops.zeros_like(log_px)
    return reconstruction, log_px, kl, diagonal_gaussian_kl(mean, log_std, model.prior_mean, model.prior_log_std)


@pytest.mark.parametrize("initial_state", ["inferred", "observed"])
def test_noise_off_call_is_the_posterior_ode_with_its_kl_by_hand(initial_state):
    x = sequences()
    model = small_model(max_step=0.15, initial_state=initial_state)
    outputs = model(x, training=False)
    expected = posterior_by_hand(model, ops.convert_to_tensor(x))
    for name, value in zip(("reconstruction", "log_likelihood", "path_kl", "initial_kl"), expected):
        np.testing.assert_allclose(numpy(outputs[name]), numpy(value), rtol=1e-5, atol=1e-5, err_msg=name)
    assert float(np.min(numpy(outputs["path_kl"]))) > 0.0


def test_observed_initial_state_starts_every_path_at_the_first_observation():
    """torchsde's Lorenz model: z(t0) = x(t0) (no draw), the identity decoder, no initial KL, no z0 weights."""
    x = sequences()
    model = small_model(initial_state="observed")
    assert not any(name in v.path for v in model.weights for name in ("prior_mean", "initial_posterior"))
    noisy = model(x, training=True)
    np.testing.assert_array_equal(numpy(noisy["reconstruction"])[:, 0], x[:, 0])
    np.testing.assert_array_equal(numpy(noisy["initial_kl"]), 0.0)
    assert not np.allclose(numpy(noisy["reconstruction"]), numpy(model(x, training=False)["reconstruction"]))
    paths, latents = model.reconstruct(x, n=4, seed=0, return_latents=True)
    np.testing.assert_array_equal(numpy(paths), numpy(latents))
    np.testing.assert_array_equal(numpy(paths)[:, :, 0], np.broadcast_to(x[:, 0], (4, 3, 2)))
    forecast = numpy(model.sample([0.7, 0.9, 1.2], n=2, seed=0, z0=x[:, -1]))
    np.testing.assert_array_equal(forecast[:, :, 0], np.broadcast_to(x[:, -1], (2, 3, 2)))


def test_noisy_posterior_solve_takes_euler_steps_on_the_seeded_path():
    x = ops.convert_to_tensor(sequences())
    model = small_model(max_step=0.15)
    ctx, mean, log_std = model.encode(x)
    eps = brownian_normal(np.array([5, 6], "int32"), mean)
    grid = Grid.through(model.times, model.max_step)
    path = brownian.Gaussian().path(np.array([3, 4], "int32"), tuple(mean.shape), "float32", grid.num_steps, grid.step_sizes)
    increments = [path.increment(n) for n in range(grid.num_steps)]
    z, path_kl = model.posterior_solve(ctx, mean + ops.exp(log_std) * eps, model.times, np.array([3, 4], "int32"))
    reconstruction, _, kl, _ = posterior_by_hand(model, x, (eps, increments))
    np.testing.assert_allclose(numpy(model.decoder(ops.moveaxis(z, 0, 1))), numpy(reconstruction), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy(path_kl), numpy(kl), rtol=1e-5)


def test_context_is_read_at_the_next_observation_time_after_t():
    model = small_model()
    ctx = ops.convert_to_tensor(np.arange(4, dtype="float32").reshape(1, 4, 1) * np.ones((1, 1, 3), "float32"))
    fields = PosteriorFields(model, ctx, TIMES, Grid.through(TIMES, 0.1), carry_context=False)
    for t, k in ((0.0, 1), (0.1, 1), (0.2, 2), (0.29, 2), (0.3, 3), (0.69, 3), (0.7, 3)):
        assert numpy(fields.context_at(ctx, ops.convert_to_tensor(t, "float32")))[0, 0] == k, t


def test_missing_observations_leave_the_likelihood_and_its_gradients():
    x = sequences()
    x[0, 1, 0] = np.nan
    x[2, :, 1] = np.nan
    model = small_model()
    outputs = model(x, training=False)
    observed = np.isfinite(x)
    reconstruction, scale = numpy(outputs["reconstruction"]), numpy(model.observation_scales())
    density = -0.5 * ((np.nan_to_num(x) - reconstruction) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(numpy(outputs["log_likelihood"]), np.where(observed, density, 0).sum((1, 2)), rtol=1e-5)

    def loss(inputs):
        pieces = model(inputs, training=False)
        return ops.mean(pieces["path_kl"] + pieces["initial_kl"] - pieces["log_likelihood"])

    grads = value_and_gradients(loss, model, x)[1:]
    assert all(np.all(np.isfinite(numpy(g))) for g in grads)
    # Sequence 1 lost nothing: its likelihood is the one it has in a batch without missing values.
    complete = numpy(model(sequences(), training=False)["log_likelihood"])
    assert complete[1] == pytest.approx(float(numpy(outputs["log_likelihood"])[1]), rel=1e-6)


def test_diffusion_net_is_bounded_and_its_derivative_matches_autodiff():
    net = DiagonalDiffusionNet(hidden_units=5, floor=0.01)
    z = ops.convert_to_tensor(np.linspace(-3, 3, 12).reshape(4, 3).astype("float32"))
    g = numpy(net(z))
    assert np.all(g > 0.01) and np.all(g < 1.0)
    step = 1e-3
    finite_difference = (numpy(net(z + step)) - numpy(net(z - step))) / (2 * step)  # g_i depends on z_i alone
    np.testing.assert_allclose(numpy(net.derivative(z)), finite_difference, rtol=2e-2, atol=1e-4)


# Training.


def test_kl_weight_rises_linearly_over_the_annealing_steps_and_weights_the_loss():
    x = sequences()
    model = small_model(kl_anneal_steps=4)
    assert model.kl_weight == 0.0
    for k in range(1, 7):
        outputs = model(x, training=True)
        assert model.kl_weight == pytest.approx(min(1.0, k / 4))
        kl = numpy(outputs["path_kl"]) + numpy(outputs["initial_kl"])
        expected = np.mean(min(1.0, k / 4) * kl - numpy(outputs["log_likelihood"]))
        assert float(numpy(model.compute_loss(x, y_pred=outputs))) == pytest.approx(expected, rel=1e-5)
    model(x, training=False)
    assert int(numpy(model.annealing_step.value)) == 6  # inference does not advance the schedule
    outputs = model(x, training=False)
    unweighted = np.mean(numpy(outputs["path_kl"]) + numpy(outputs["initial_kl"]) - numpy(outputs["log_likelihood"]))
    assert float(numpy(model.compute_loss(x, y_pred=outputs, training=False))) == pytest.approx(unweighted, rel=1e-5)


def test_annealing_step_advances_once_per_fit_step():
    model = small_model(kl_anneal_steps=10)
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(sequences(batch=8), batch_size=4, epochs=2, verbose=0)
    assert int(numpy(model.annealing_step.value)) == 4
    assert model.kl_weight == pytest.approx(0.4)


@pytest.mark.slow
def test_fit_lowers_the_negative_elbo():
    x = sequences(batch=32, times=np.linspace(0, 1, 8), seed=3) + 2.0  # far from the untrained decoder's outputs
    model = small_model(times=np.linspace(0, 1, 8), hidden_units=16, kl_anneal_steps=20)
    model.compile(keras.optimizers.Adam(2e-2))
    before = model.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    history = model.fit(x, batch_size=32, epochs=40, verbose=0)
    after = model.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    assert after["loss"] < 0.2 * before["loss"]
    assert after["elbo"] > before["elbo"]
    assert set(history.history) >= {"loss", "log_likelihood", "path_kl", "initial_kl", "elbo"}


def negative_elbo(model, gradient):
    """The one-path negative ELBO on fixed noise, by `gradient`, as a function of x."""

    def loss(x):
        ctx, mean, log_std = model.encode(x)
        z0 = model.initial_draw(mean, log_std, np.array([5, 6], "int32"))
        z, path_kl = model.posterior_solve(ctx, z0, model.times, np.array([3, 4], "int32"), gradient=gradient)
        log_px = masked_log_likelihood(x, model.decoder(ops.moveaxis(z, 0, 1)), model.observation_scales())
        initial_kl = model.initial_kl(mean, log_std)
        return ops.sum(path_kl + initial_kl - log_px)

    return loss


@pytest.mark.parametrize(
    "gradient, solver, initial_state",
    [
        ("pathwise", "euler_maruyama", "inferred"),
        ("pathwise", "milstein", "inferred"),
        ("reversible", "reversible_heun", "inferred"),
        ("pathwise", "euler_maruyama", "observed"),
    ],
)
def test_custom_gradients_of_the_elbo_equal_autodiff_encoder_included(gradient, solver, initial_state):
    """The context rides in the solver's state for the custom gradients: the encoder's gradients must survive."""
    model = small_model(solver=solver, max_step=0.1, initial_state=initial_state)
    x = sequences()
    expected = value_and_gradients(negative_elbo(model, "autodiff"), model, x)
    actual = value_and_gradients(negative_elbo(model, gradient), model, x)
    encoder = [i + 1 for i, v in enumerate(model.trainable_variables) if "encoder" in v.path]
    assert encoder and all(float(np.max(np.abs(numpy(expected[i])))) > 0 for i in encoder)
    assert max_relative_error(expected, actual) < 1e-4


@pytest.mark.parametrize(
    "gradient, solver",
    [("autodiff", "euler_maruyama"), ("pathwise", "euler_maruyama"), ("reversible", "reversible_heun")],
)
def test_every_gradient_method_trains_with_fit(gradient, solver):
    model = small_model(gradient=gradient, solver=solver)
    before = [numpy(v) for v in model.trainable_variables]
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(sequences(batch=4), batch_size=4, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    changed = [not np.allclose(b, numpy(v)) for b, v in zip(before, model.trainable_variables)]
    assert all(changed)


# Saving.


@pytest.mark.parametrize("initial_state", ["inferred", "observed"])
def test_keras_file_round_trip_gives_identical_noise_off_predictions(tmp_path, initial_state):
    x = sequences()
    x[1, 2, 0] = np.nan
    model = small_model(
        likelihood="laplace", learn_observation_scale=True, kl_anneal_steps=5, gradient="pathwise", initial_state=initial_state
    )
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(x, batch_size=3, epochs=2, verbose=0)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "latent_sde.keras")
    restored = keras.saving.load_model(tmp_path / "latent_sde.keras")
    assert restored.get_config() == model.get_config()
    assert int(numpy(restored.annealing_step.value)) == 2
    actual = restored.predict(x, verbose=0)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


# Sampling.


def test_sample_draws_prior_paths_with_shapes_and_seeds():
    model = small_model()
    times = np.array([0.0, 0.5, 0.75, 2.0])
    paths = numpy(model.sample(times, n=5, seed=3))
    assert paths.shape == (5, 4, 2)
    np.testing.assert_array_equal(numpy(model.sample(times, n=5, seed=3)), paths)
    assert not np.allclose(numpy(model.sample(times, n=5, seed=4)), paths)
    assert not np.allclose(paths[0], paths[1])


def test_sample_from_given_states_starts_at_their_decoding():
    model = small_model()
    z0 = np.random.default_rng(0).normal(size=(2, 3, 2)).astype("float32")
    paths = numpy(model.sample([1.0, 1.1, 1.5], n=4, seed=0, z0=z0))
    assert paths.shape == (4, 2, 3, 3, 2)
    for i in range(4):
        np.testing.assert_allclose(paths[i, ..., 0, :], numpy(model.decoder(z0)), rtol=1e-6, atol=1e-6)
    noisy = numpy(model.sample([1.0, 1.1, 1.5], n=4, seed=0, z0=z0, observation_noise=True))
    residual = (noisy - paths)[..., 0, :]  # the same latent paths, plus N(0, 0.1^2) observation noise
    assert 0.05 < float(np.std(residual)) < 0.2


def test_reconstruct_draws_posterior_paths_with_shapes_and_seeds():
    model = small_model()
    x = sequences()
    decoded, latents = model.reconstruct(x, n=6, seed=2, return_latents=True)
    assert tuple(decoded.shape) == (6, 3, 4, 2) and tuple(latents.shape) == (6, 3, 4, 2)
    np.testing.assert_array_equal(numpy(model.reconstruct(x, n=6, seed=2)), numpy(decoded))
    assert not np.allclose(numpy(model.reconstruct(x, n=6, seed=5)), numpy(decoded))
    np.testing.assert_allclose(numpy(model.decoder(latents)), numpy(decoded), rtol=1e-6, atol=1e-6)
    other_times = np.array([0.0, 0.1, 0.4])
    assert tuple(model.reconstruct(x[:, :3], times=other_times, n=2, seed=0).shape) == (2, 3, 3, 2)


# Bad arguments.


@pytest.mark.parametrize(
    "arguments, name",
    [
        (dict(times=[0.0, 0.5, 0.4]), "times="),
        (dict(times=[0.0]), "times="),
        (dict(latent_dim=0), "latent_dim=0"),
        (dict(context_dim=2.5), "context_dim=2.5"),
        (dict(likelihood="poisson"), "likelihood='poisson'"),
        (dict(observation_scale=0.0), "observation_scale=0.0"),
        (dict(kl_anneal_steps=-1), "kl_anneal_steps=-1"),
        (dict(max_step=0), "max_step=0"),
        (dict(diffusion_floor=1.0), "diffusion_floor=1.0"),
        (dict(solver="rk4"), "solver='rk4'"),
        (dict(gradient="reversible"), "solver="),
        (dict(seed=-1), "seed=-1"),
        (dict(learn_observation_scale="yes"), "learn_observation_scale='yes'"),
        (dict(initial_state="first"), "initial_state='first'"),
    ],
)
def test_bad_constructor_arguments_are_value_errors_naming_them(arguments, name):
    with pytest.raises(ValueError, match=name.replace("(", r"\(").replace("[", r"\[")):
        LatentSDE(**{"times": TIMES, **arguments})


def test_bad_call_and_sampling_arguments_are_value_errors_naming_them():
    model = small_model()
    with pytest.raises(ValueError, match="inputs"):
        model(sequences(times=np.linspace(0, 1, 5)))
    with pytest.raises(ValueError, match="n=0"):
        model.sample(TIMES, n=0)
    with pytest.raises(ValueError, match="z0"):
        model.sample(TIMES, z0=np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match="times="):
        model.reconstruct(sequences(), times=[0.0, 0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="seed=-3"):
        model.sample(TIMES, seed=-3)
    model.compile(keras.optimizers.Adam())
    with pytest.raises(ValueError, match="y="):
        model.fit(sequences(), sequences(), verbose=0)
    with pytest.raises(ValueError, match="built"):
        LatentSDE(TIMES).sample(TIMES)


def test_an_observed_start_needs_the_data_dimension_a_first_observation_and_a_given_z0():
    with pytest.raises(ValueError, match="latent_dim=3"):
        small_model(latent_dim=3, initial_state="observed")
    model = small_model(initial_state="observed")
    with pytest.raises(ValueError, match="z0=None"):
        model.sample(TIMES, n=2, seed=0)
    x = sequences()
    x[1, 0, 1] = np.nan
    with pytest.raises(ValueError, match="first observation"):
        model.reconstruct(x, n=2, seed=0)
    with pytest.raises(ValueError, match="first observation"):
        model.elbo(x, n=2, seed=0)
    assert np.isnan(numpy(model(x, training=True)["log_likelihood"])[1])  # in a traced call: NaN, never a silent value


def test_elbo_estimate_averages_posterior_paths_with_the_exact_initial_kl():
    model = small_model(max_step=0.15)
    x = ops.convert_to_tensor(sequences())
    one_path = model.elbo(x, n=1, seed=7)  # z0 from seed [7, 0], the path from [7, 1]
    ctx, mean, log_std = model.encode(x)
    z0 = mean + ops.exp(log_std) * brownian_normal(np.array([7, 0], "int32"), mean)
    z, path_kl = model.posterior_solve(ctx, z0, model.times, np.array([7, 1], "int32"))
    log_px = masked_log_likelihood(x, model.decoder(ops.moveaxis(z, 0, 1)), model.observation_scales())
    initial_kl = model(x, training=False)["initial_kl"]
    for name, value in (("log_likelihood", log_px), ("path_kl", path_kl), ("initial_kl", initial_kl)):
        np.testing.assert_allclose(numpy(one_path[name]), numpy(value), rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(
        numpy(one_path["elbo"]), numpy(log_px - path_kl - initial_kl), rtol=1e-5
    )
    draws = np.stack([numpy(model.elbo(x, n=1, seed=s)["elbo"]) for s in range(30)])
    many = numpy(model.elbo(x, n=300, seed=100)["elbo"])
    assert np.all(np.abs(many - draws.mean(0)) < 4 * draws.std(0) / np.sqrt(30) + 1e-3)
