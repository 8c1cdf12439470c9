"""LatentSDE: a latent SDE for time series trained by its evidence lower bound (Li et al., 2020).

    model = LatentSDE(times=np.linspace(0, 1, 50), latent_dim=4, kl_anneal_steps=500)
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(x, batch_size=128, epochs=100)          # x: (sequences, 50, D), NaN where missing
    forecast = model.sample(future_times, n=100, z0=posterior_states)
"""

import keras
import numpy as np
from keras import ops

from keras_nsde import backend, brownian, gradients, solvers, validation
from keras_nsde.models.diagonal_diffusion_net import DiagonalDiffusionNet
from keras_nsde.models.likelihoods import LIKELIHOODS, diagonal_gaussian_kl, masked_log_likelihood, observed
from keras_nsde.models.torch_init import torch_dense, torch_uniform
from keras_nsde.solvers import Grid, SaveAt, SDETerms


@keras.saving.register_keras_serializable(package="keras_nsde")
class LatentSDE(keras.Model):
    """A latent SDE for sequences observed at given times, trained by maximising its ELBO.

    The generative model (the prior), with latent z in R^d and observations x in R^D:

        z(t0) ~ p(z0) = N(m_p, diag s_p^2)                    (m_p, s_p learned)
        dz = h_psi(z) dt + g(z) dW                            (prior drift h_psi: an MLP)
        x(t_k) ~ Gaussian or Laplace(decoder(z(t_k)), scale)  (decoder: Dense)

    The approximate posterior, given a sequence x(t_0 .. t_{T-1}):

        ctx = Dense(GRU run backwards over [x with NaN as 0, 1 - mask])   (batch, T, C)
        z(t0) ~ q(z0 | x) = N(m_q, diag s_q^2),  (m_q, log s_q) = Dense(ctx[:, 0])
        dz = f_phi(z, ctx(t)) dt + g(z) dW,  ctx(t) = ctx[:, k+1] for t_k <= t < t_{k+1}

    where f_phi is an MLP on [z, ctx(t)], on [t_k, t_{k+1}) the context of
    the observations still ahead, x(t_{k+1}), ..., x(t_{T-1}) (those behind
    are in z(t) already; torchsde's example reads the same); the diagonal
    diffusion g(z) is shared by both SDEs (`DiagonalDiffusionNet`, one small
    network per latent dimension, in (floor, 1)). The loss is the negative ELBO,

        loss = -E_q[ sum_k log p(x(t_k) | z(t_k)) ]
               + w * ( E_q[ int 1/2 |(f_phi - h_psi) / g|^2 dt ] + KL(q(z0) || p(z0)) ),

    the path KL by Girsanov's theorem, accumulated alongside z
    (`keras_nsde.solvers.with_path_kl`); each expectation is estimated with
    one posterior path per sequence. The KL weight w rises linearly, w =
    min(1, k / kl_anneal_steps) at the k-th training call (torchsde's example);
    the count k is the non-trainable variable `annealing_step`, updated in
    `call`, so it is part of the model's state on every backend (and saved).
    Missing observations (NaN) are left out of the likelihood and given to the
    encoder as zeros plus a missing-value indicator (1 where missing, so that
    on complete data the encoder is exactly torchsde's: the indicator's
    weights see zeros and take no gradient). The times are shared by the batch
    and static: the SDEs are solved on `Grid.through(times, max_step)` and
    their states read at the observation times (`SaveAt(times=times)`).

    With `initial_state="observed"` (torchsde's Lorenz example) the latent
    space is the data space (d = D): both SDEs start at the first
    observation, z(t0) = x(t0), the decoder is the identity and there is no
    initial KL (no p(z0), q(z0)); the first observation must be present.

    The encoder and drift networks start from PyTorch's default weights
    (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases included), as torchsde's
    example does: on its Lorenz data Keras' Glorot kernels and zero biases
    trained markedly slower (docs/guides/time-series.md).

    The drifts do not read t itself: the posterior learns where it is in the
    window from ctx(t), and the prior, being autonomous, can be run past the
    end of the training windows (forecasts).

    Args:
        times: the observation times t_0 < ... < t_{T-1} (1-D, at least 2).
        latent_dim: d, the latent state's dimension.
        context_dim: C, the context's channels per time.
        hidden_units: H, the width of the GRU, the drift MLPs (two hidden
            softplus layers) and each dimension's diffusion network.
        likelihood: "gaussian" or "laplace".
        observation_scale: the likelihood's scale (standard deviation, or
            Laplace's b), > 0: fixed, or the initial value when learned.
        learn_observation_scale: learn one scale per observation dimension.
        kl_anneal_steps: training calls over which the KL weight rises
            linearly to 1; 0 keeps it at 1.
        max_step: the largest solver step; each interval between observation
            times is split into equal steps no longer than this. None: the
            shortest interval between times.
        diffusion_floor: the smallest value of g, in [0, 1).
        solver: a fixed-step `keras_nsde.solvers` solver or its name
            ("euler_maruyama", "milstein", "reversible_heun").
        gradient: a `keras_nsde.gradients` method or its name ("autodiff",
            "pathwise", "reversible"). The custom-gradient methods carry the
            context in the solver's state (zero drift and noise there) so that
            its gradient reaches the encoder.
        seed: int seed of the model's noise (posterior paths and z0 draws);
            None draws one at random.
        initial_state: "inferred" (z(t0) ~ q(z0 | x), decoded by a Dense
            layer) or "observed" (z(t0) = x(t0), latent_dim must equal D,
            the identity decoder).
        **kwargs: base `keras.Model` arguments (name, dtype, ...).

    Call arguments:
        inputs: x, `(batch, T, D)`, NaN where an observation is missing.
        training: Python bool. True: z0 drawn from q(z0 | x) and a fresh
            Brownian path per call, and the KL weight annealed (its step count
            advanced). False (noise off): z0 = m_q and the posterior ODE
            dz = f_phi dt, deterministic (the posterior mean path), KL weight 1.

    Returns (from `call`, `predict`):
        A dict: "reconstruction" `(batch, T, D)`, the decoded posterior path
        (the likelihood's mean); "log_likelihood", "path_kl" and "initial_kl",
        each `(batch,)`, the ELBO's pieces per sequence.
    """

    def __init__(
        self,
        times,
        latent_dim=4,
        context_dim=64,
        hidden_units=128,
        likelihood="gaussian",
        observation_scale=0.01,
        learn_observation_scale=False,
        kl_anneal_steps=0,
        max_step=None,
        diffusion_floor=1e-4,
        solver="euler_maruyama",
        gradient="autodiff",
        seed=None,
        initial_state="inferred",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.times = observation_times("times", times)
        self.latent_dim = validation.integer("latent_dim", latent_dim, minimum=1)
        self.context_dim = validation.integer("context_dim", context_dim, minimum=1)
        self.hidden_units = validation.integer("hidden_units", hidden_units, minimum=1)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {list(LIKELIHOODS)}. Received: likelihood={likelihood!r}")
        self.likelihood = likelihood
        self.observation_scale = validation.number(
            "observation_scale", observation_scale, minimum=0.0, exclusive_minimum=True
        )
        self.learn_observation_scale = validation.boolean("learn_observation_scale", learn_observation_scale)
        self.kl_anneal_steps = validation.integer("kl_anneal_steps", kl_anneal_steps, minimum=0)
        self.max_step = (
            float(np.min(np.diff(self.times)))
            if max_step is None
            else validation.number("max_step", max_step, minimum=0.0, exclusive_minimum=True)
        )
        self.diffusion_floor = validation.number(
            "diffusion_floor", diffusion_floor, minimum=0.0, maximum=1.0, exclusive_maximum=True
        )
        self.solver = solvers.get(solver)
        if not self.solver.is_fixed_step:
            raise ValueError(
                "LatentSDE needs a fixed-step SDE solver (euler_maruyama, milstein, reversible_heun); "
                f"an adaptive ODE solver cannot integrate its noise. Received: solver={self.solver!r}"
            )
        self.gradient = gradients.get(gradient)
        self.gradient.check(self.solver)
        self.seed = None if seed is None else validation.integer("seed", seed, minimum=0, maximum=brownian.MAX_SEED)
        self.seed_generator = keras.random.SeedGenerator(seed)
        if initial_state not in INITIAL_STATES:
            raise ValueError(f"initial_state must be one of {list(INITIAL_STATES)}. Received: initial_state={initial_state!r}")
        self.initial_state = initial_state

        units, policy = self.hidden_units, self.dtype_policy
        gru_init = torch_uniform(units)  # PyTorch's nn.GRU: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
        self.encoder_gru = keras.layers.GRU(
            units, return_sequences=True, kernel_initializer=gru_init, recurrent_initializer=gru_init,
            bias_initializer=gru_init, dtype=policy, name="encoder_gru",
        )
        self.encoder_context = torch_dense(self.context_dim, units, policy, name="encoder_context")
        self.initial_posterior = (  # q(z0 | x)'s mean and log std from ctx[:, 0]
            None
            if initial_state == "observed"
            else keras.layers.Dense(2 * self.latent_dim, dtype=policy, name="initial_posterior")
        )
        self.posterior_drift = drift_mlp(self.latent_dim + self.context_dim, units, self.latent_dim, policy, "posterior_drift")
        self.prior_drift = drift_mlp(self.latent_dim, units, self.latent_dim, policy, "prior_drift")
        self.diffusion = DiagonalDiffusionNet(units, self.diffusion_floor, dtype=policy, name="diffusion")
        self.decoder = None  # Dense(D), made in build once D is known

        self.log_likelihood_tracker = keras.metrics.Mean(name="log_likelihood")
        self.path_kl_tracker = keras.metrics.Mean(name="path_kl")
        self.initial_kl_tracker = keras.metrics.Mean(name="initial_kl")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"LatentSDE takes sequences of shape (batch, T, D) with D known. Received: input_shape={input_shape}"
            )
        d, dim = self.latent_dim, input_shape[-1]
        self.observation_dim = dim
        layers = [
            (self.encoder_gru, (None, None, 2 * dim)),
            (self.encoder_context, (None, None, self.hidden_units)),
            (self.posterior_drift, (None, d + self.context_dim)),
            (self.prior_drift, (None, d)),
            (self.diffusion, (None, d)),
        ]
        if self.initial_state == "observed":
            if d != dim:
                raise ValueError(
                    'With initial_state="observed" the latent state is the observation: latent_dim must equal the '
                    f"sequences' dimension D = {dim}. Received: latent_dim={d}"
                )
            self.decoder = keras.layers.Identity(dtype=self.dtype_policy, name="decoder")
        else:
            self.decoder = keras.layers.Dense(dim, dtype=self.dtype_policy, name="decoder")
            layers += [(self.initial_posterior, (None, self.context_dim)), (self.decoder, (None, d))]
            self.prior_mean = self.add_weight(name="prior_mean", shape=(d,), initializer="zeros")
            self.prior_log_std = self.add_weight(name="prior_log_std", shape=(d,), initializer="zeros")
        for layer, shape in layers:
            if not layer.built:
                layer.build(shape)
        self.log_observation_scale = self.add_weight(
            name="log_observation_scale",
            shape=(dim,),
            initializer=keras.initializers.Constant(np.log(self.observation_scale)),
            trainable=self.learn_observation_scale,
        )
        self.annealing_step = self.add_weight(
            name="annealing_step", shape=(), dtype="int32", initializer="zeros", trainable=False
        )
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: dim})
        self.built = True

    # The model's pieces: encoder, the two SDEs, decoder.

    def encode(self, x):
        """(ctx `(batch, T, C)`, m_q `(batch, d)`, log s_q `(batch, d)`) from x `(batch, T, D)` with NaN where missing.

        The GRU reads the sequence backwards, so ctx[:, k] summarises x(t_k), ..., x(t_{T-1}).
        With `initial_state="observed"`, m_q = x(t0) and log s_q is None (z0 is not drawn).
        """
        mask, filled = observed(x)
        features = ops.concatenate([filled, 1.0 - mask], axis=-1)
        ctx = self.encoder_context(ops.flip(self.encoder_gru(ops.flip(features, axis=1)), axis=1))
        if self.initial_state == "observed":
            return ctx, x[:, 0], None  # a missing x(t0) stays NaN, so the loss is NaN, not silently wrong
        mean, log_std = ops.split(self.initial_posterior(ctx[:, 0]), 2, axis=-1)
        return ctx, mean, log_std

    def initial_draw(self, mean, log_std, seed):
        """z0 ~ q(z0 | x) = N(mean, exp(log_std)^2) from a per-call seed; z0 = mean for an observed start."""
        if log_std is None:
            return mean
        return mean + ops.exp(log_std) * brownian_normal(seed, mean)

    def initial_kl(self, mean, log_std):
        """KL(q(z0) || p(z0)) per sequence `(batch,)`; zeros for an observed start."""
        if log_std is None:
            return ops.zeros_like(mean[:, 0])
        return diagonal_gaussian_kl(mean, log_std, self.prior_mean, self.prior_log_std)

    def observation_scales(self):
        """The likelihood's scale per observation dimension, `(D,)`."""
        return ops.exp(self.log_observation_scale)

    def decode(self, z, next_seed=None):
        """The likelihood's mean decoder(z) `(..., D)`, or, given `next_seed` (a function returning seeds), a draw from p(x | z)."""
        mean = self.decoder(z)
        if next_seed is None:
            return mean
        scale = ops.cast(self.observation_scales(), mean.dtype)
        return mean + scale * standard_noise(self.likelihood, next_seed, mean)

    def sde_variables(self):
        """The weights the SDEs' vector fields read (custom gradients take them explicitly)."""
        layers = (self.posterior_drift, self.prior_drift, self.diffusion)
        return tuple(v for layer in layers for v in layer.trainable_variables)

    def prior_terms(self):
        """dz = h_psi(z) dt + g(z) dW as `SDETerms`."""
        return SDETerms(
            lambda z, t: self.prior_drift(z),
            lambda z, t, f: self.diffusion(z),
            lambda z, t, f: self.diffusion.derivative(z),
            self.sde_variables(),
        )

    def posterior_solve(self, ctx, z0, times, seed=None, gradient=None):
        """The posterior SDE from z0 with its path KL: (z at `times`, time-major `(T, batch, d)`; KL `(batch,)`).

        `seed` None: the ODE dz = f_phi dt (no noise). `gradient` None: the
        model's method.
        """
        gradient = self.gradient if gradient is None else gradients.get(gradient)
        grid = Grid.through(times, self.max_step)
        fields = PosteriorFields(self, ctx, times, grid, carry_context=gradient.name != "autodiff")
        terms = solvers.with_path_kl(fields.terms(), fields.prior_drift)
        h0 = solvers.append_kl(fields.initial_state(z0))
        path = None if seed is None else self.brownian_path(seed, z0, grid, padding=h0.shape[-1] - self.latent_dim)
        ys = solvers.solve(terms, self.solver, path, h0, grid, SaveAt(times=times), gradient).ys
        return ys[..., : self.latent_dim], ys[-1, :, -1]

    def prior_solve(self, z0, times, seed=None):
        """The prior SDE from z0 (None seed: its ODE): z at `times`, time-major `(T, batch, d)`."""
        grid = Grid.through(times, self.max_step)
        path = None if seed is None else self.brownian_path(seed, z0, grid)
        return solvers.solve(self.prior_terms(), self.solver, path, z0, grid, SaveAt(times=times)).ys

    def brownian_path(self, seed, z0, grid, padding=0):
        """Brownian increments for the latent state (batch, d), with zeros for `padding` more state components."""
        shape = backend.get().random_shape(z0)
        path = brownian.Gaussian().path(seed, shape, z0.dtype, grid.num_steps, grid.step_sizes)
        return ZeroPaddedPath(path, padding) if padding else path

    def noise_seed(self):
        """A fresh per-call seed (int32, (2,)) from the model's SeedGenerator, as `SDEBlock.new_noise_seed`."""
        return backend.get().replica_seed(ops.cast(self.seed_generator.next(), "int32"))

    # Keras: call, loss, configuration.

    def call(self, inputs, training=None):
        training = validation.optional_boolean("training", training)
        backend.get().check_dtype(self.compute_dtype)
        self._check_inputs(inputs, self.times, "inputs")
        x = ops.cast(inputs, self.compute_dtype)
        ctx, mean, log_std = self.encode(x)
        if training:
            path_seed, initial_seed = self.noise_seed(), self.noise_seed()
            z0 = self.initial_draw(mean, log_std, initial_seed)
            self.annealing_step.assign_add(ops.ones((), "int32"))
        else:
            path_seed, z0 = None, mean
        z, path_kl = self.posterior_solve(ctx, z0, self.times, path_seed)
        reconstruction = self.decoder(ops.moveaxis(z, 0, 1))
        scale = ops.cast(self.observation_scales(), x.dtype)
        return {
            "reconstruction": reconstruction,
            "log_likelihood": masked_log_likelihood(x, reconstruction, scale, self.likelihood),
            "path_kl": path_kl,
            "initial_kl": self.initial_kl(mean, log_std),
        }

    @property
    def kl_weight(self):
        """The KL weight of the latest training call: min(1, k / kl_anneal_steps) (1 when not annealing)."""
        if self.kl_anneal_steps == 0:
            return 1.0
        return min(1.0, float(ops.convert_to_numpy(self.annealing_step.value)) / self.kl_anneal_steps)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The negative ELBO averaged over the batch, the KL annealed when training; updates the ELBO metrics.

        The ELBO's pieces come in `y_pred` (the output of `call`), so the loss
        and its metrics are computed here, where Keras' trainers keep metric
        updates on every backend (on JAX inside its stateless train step).
        """
        if y is not None or sample_weight is not None:
            raise ValueError(
                "LatentSDE is trained on sequences alone (fit(x)); it takes no targets or sample weights. "
                f"Received: y={'given' if y is not None else None}, "
                f"sample_weight={'given' if sample_weight is not None else None}"
            )
        log_likelihood, path_kl, initial_kl = (y_pred[k] for k in ("log_likelihood", "path_kl", "initial_kl"))
        kl = path_kl + initial_kl
        weight = ops.cast(self.annealed_weight() if training else 1.0, kl.dtype)
        loss = ops.mean(weight * kl - log_likelihood)
        self.log_likelihood_tracker.update_state(log_likelihood)
        self.path_kl_tracker.update_state(path_kl)
        self.initial_kl_tracker.update_state(initial_kl)
        self.elbo_tracker.update_state(log_likelihood - kl)
        if self.losses:
            loss = loss + ops.cast(ops.sum(ops.stack(self.losses)), loss.dtype)
        return loss

    def annealed_weight(self):
        """min(1, k / kl_anneal_steps) as a tensor (1.0 when not annealing)."""
        if self.kl_anneal_steps == 0:
            return 1.0
        step = ops.cast(self.annealing_step, "float32")
        return ops.minimum(1.0, step / float(self.kl_anneal_steps))

    def get_config(self):
        return {
            **super().get_config(),
            "times": self.times.tolist(),
            "latent_dim": self.latent_dim,
            "context_dim": self.context_dim,
            "hidden_units": self.hidden_units,
            "likelihood": self.likelihood,
            "observation_scale": self.observation_scale,
            "learn_observation_scale": self.learn_observation_scale,
            "kl_anneal_steps": self.kl_anneal_steps,
            "max_step": self.max_step,
            "diffusion_floor": self.diffusion_floor,
            "solver": keras.saving.serialize_keras_object(self.solver),
            "gradient": keras.saving.serialize_keras_object(self.gradient),
            "seed": self.seed,
            "initial_state": self.initial_state,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # Sampling: prior (forecast) and posterior (reconstruction) paths.

    def sample(self, times, n=1, seed=None, z0=None, observation_noise=False):
        """n prior paths at `times`, decoded: draws from the generative model, or forecasts from given states.

        Args:
            times: sorted 1-D times (at least 2); the paths start at times[0].
            n: number of paths (per given state).
            seed: int seed (the same seed, the same paths); None: the model's SeedGenerator.
            z0: None draws z(times[0]) from p(z0) (not with an observed
                initial state, which has no p(z0)); or latent states `(..., d)`
                at times[0] (e.g. posterior states at the end of observed
                windows, from `reconstruct(..., return_latents=True)`).
            observation_noise: add the likelihood's noise (predictive draws of
                x) instead of returning its mean.

        Returns:
            `(n,) + z0.shape[:-1] + (len(times), D)` (`(n, len(times), D)` for z0 None).
        """
        self._check_built("sample")
        times = observation_times("times", times)
        n = validation.integer("n", n, minimum=1)
        seeds = SampleSeeds(self, seed)
        d, dtype = self.latent_dim, self.compute_dtype
        if z0 is None:
            if self.initial_state == "observed":
                raise ValueError(
                    'LatentSDE.sample needs z0 when initial_state="observed" (the model has no p(z0)). Received: z0=None'
                )
            batch_shape = ()
            eps = brownian_normal(seeds.next(), ops.zeros((n, d), dtype))
            start = self.prior_mean + ops.exp(self.prior_log_std) * eps
        else:
            z0 = ops.convert_to_tensor(z0, dtype)
            if z0.shape[-1] != d:
                raise ValueError(f"z0 must have shape (..., latent_dim={d}). Received: z0 with shape {tuple(z0.shape)}")
            batch_shape = tuple(z0.shape[:-1])
            start = ops.reshape(ops.repeat(ops.reshape(z0, (1, -1, d)), n, axis=0), (-1, d))
        z = ops.moveaxis(self.prior_solve(start, times, seeds.next()), 0, 1)
        x = self.decode(z, seeds.next if observation_noise else None)
        return ops.reshape(x, (n,) + batch_shape + (len(times), self.observation_dim))

    def reconstruct(self, x, times=None, n=1, seed=None, observation_noise=False, return_latents=False):
        """n posterior paths per sequence, conditioned on x: z0 ~ q(z0 | x) and the posterior SDE, decoded.

        Args:
            x: sequences `(batch, T, D)`, NaN where missing.
            times: their T observation times (default: the model's).
            n: paths per sequence.
            seed: int seed; None: the model's SeedGenerator.
            observation_noise: add the likelihood's noise to the decoded paths.
            return_latents: also return the latent paths.

        Returns:
            `(n, batch, T, D)`; with `return_latents`, (that, the latent paths `(n, batch, T, d)`).
        """
        x, times, n, seeds = self._sampling_arguments("reconstruct", x, times, n, seed)
        z, _, _ = self._posterior_draws(x, times, n, seeds)
        batch = x.shape[0]
        decoded = ops.reshape(
            self.decode(z, seeds.next if observation_noise else None), (n, batch, len(times), self.observation_dim)
        )
        if return_latents:
            return decoded, ops.reshape(z, (n, batch, len(times), self.latent_dim))
        return decoded

    def elbo(self, x, times=None, n=1, seed=None):
        """The ELBO of each sequence with the KL weight 1, estimated with n posterior paths each.

            ELBO = E_q[ sum_k log p(x(t_k) | z(t_k)) ] - E_q[ path KL ] - KL(q(z0) || p(z0))

        (the last term in closed form). `evaluate` reports the noise-off
        version (the posterior mean path), which is not an estimate of it.

        Args:
            x: sequences `(batch, T, D)`, NaN where missing.
            times: their T observation times (default: the model's).
            n: posterior paths per sequence.
            seed: int seed; None: the model's SeedGenerator.

        Returns:
            A dict of `(batch,)` tensors: "elbo", "log_likelihood", "path_kl", "initial_kl".
        """
        x, times, n, seeds = self._sampling_arguments("elbo", x, times, n, seed)
        z, path_kl, (mean, log_std) = self._posterior_draws(x, times, n, seeds)
        repeated = ops.reshape(ops.repeat(ops.expand_dims(x, 0), n, axis=0), (-1,) + tuple(x.shape[1:]))
        scale = ops.cast(self.observation_scales(), x.dtype)
        log_likelihood = masked_log_likelihood(repeated, self.decoder(z), scale, self.likelihood)
        log_likelihood, path_kl = (ops.mean(ops.reshape(v, (n, -1)), axis=0) for v in (log_likelihood, path_kl))
        initial_kl = self.initial_kl(mean, log_std)
        return {
            "elbo": log_likelihood - path_kl - initial_kl,
            "log_likelihood": log_likelihood,
            "path_kl": path_kl,
            "initial_kl": initial_kl,
        }

    def _sampling_arguments(self, method, x, times, n, seed):
        """(x as a tensor, times, n, SampleSeeds), checked."""
        self._check_built(method)
        times = self.times if times is None else observation_times("times", times)
        n = validation.integer("n", n, minimum=1)
        x = ops.convert_to_tensor(x, self.compute_dtype)
        self._check_inputs(x, times, "x")
        if self.initial_state == "observed" and not np.all(np.isfinite(ops.convert_to_numpy(x[:, 0]))):
            raise ValueError(
                'With initial_state="observed" every sequence must have its first observation (z(t0) = x(t0)). '
                "Received: x with NaN at the first time"
            )
        return x, times, n, SampleSeeds(self, seed)

    def _posterior_draws(self, x, times, n, seeds):
        """n posterior paths per sequence: (z `(n * batch, T, d)`, path KL `(n * batch,)`, (m_q, log s_q) `(batch, d)`)."""
        ctx, mean, log_std = self.encode(x)
        ctx_n, mean_n, log_std_n = (
            None if v is None else ops.reshape(ops.repeat(ops.expand_dims(v, 0), n, axis=0), (-1,) + tuple(v.shape[1:]))
            for v in (ctx, mean, log_std)
        )
        z0 = self.initial_draw(mean_n, log_std_n, seeds.next())
        z, path_kl = self.posterior_solve(ctx_n, z0, times, seeds.next(), gradient="autodiff")
        return ops.moveaxis(z, 0, 1), path_kl, (mean, log_std)

    def _check_built(self, method):
        if not self.built:
            raise ValueError(
                f"LatentSDE.{method} needs a built model (call it on data, fit it or build it first). "
                f"Received: a model with built={self.built}"
            )

    def _check_inputs(self, x, times, name):
        shape = tuple(x.shape)
        if len(shape) != 3:
            raise ValueError(f"{name} must be sequences of shape (batch, T, D). Received: {name} with shape {shape}")
        if shape[1] is not None and shape[1] != len(times):
            raise ValueError(
                f"{name} must have one step per observation time (T = len(times) = {len(times)}). "
                f"Received: {name} with shape {shape}"
            )


class PosteriorFields:
    """The posterior drift f_phi(z, ctx(t)), the diffusion g(z) and the prior drift h_psi(z) on the solver's state.

    With `carry_context` the state is [z, ctx flattened] `(batch, d + T C)`,
    the context components having zero drift and zero noise (their diffusion
    is 1 and their increments 0, so the KL integrand is 0 there), so that a
    custom gradient (pathwise, reversible), which differentiates only the
    initial state and the weights, returns the context's gradient as part of
    the initial state's. Otherwise the state is z and the fields read ctx.
    """

    def __init__(self, model, ctx, times, grid, carry_context):
        self.model, self.ctx, self.carry_context = model, ctx, carry_context
        self.num_times, self.context_dim = len(times), ctx.shape[-1]
        self.times = ops.convert_to_tensor(times, ctx.dtype)
        steps = np.diff(grid.time_points())
        self.tolerance = 0.01 * float(np.min(steps))  # float rounding of t, far below any step

    def context_at(self, ctx, t):
        """ctx[:, k+1] for t_k <= t < t_{k+1}: the context of the next observation time, `(batch, C)`.

        (The last time's own context at t >= t_{T-1}, where no step is taken.)
        """
        count = ops.sum(ops.cast(self.times <= t + self.tolerance, "int32"))  # k + 1
        return ops.take(ctx, ops.clip(count, 0, self.num_times - 1), axis=1)

    def split(self, h):
        """(z, ctx) from a state."""
        d = self.model.latent_dim
        if not self.carry_context:
            return h, self.ctx
        return h[..., :d], ops.reshape(h[..., d:], (-1, self.num_times, self.context_dim))

    def pad(self, h, z_part, context_value):
        """[z_part, context_value for every context component] (z_part alone without a carried context)."""
        if not self.carry_context:
            return z_part
        rest = h[..., self.model.latent_dim :]
        return ops.concatenate([z_part, ops.zeros_like(rest) + context_value], axis=-1)

    def initial_state(self, z0):
        if not self.carry_context:
            return z0
        flat = ops.reshape(self.ctx, (-1, self.num_times * self.context_dim))
        return ops.concatenate([z0, ops.cast(flat, z0.dtype)], axis=-1)

    def drift(self, h, t):
        z, ctx = self.split(h)
        f = self.model.posterior_drift(ops.concatenate([z, ops.cast(self.context_at(ctx, t), z.dtype)], axis=-1))
        return self.pad(h, f, 0.0)

    def diffusion(self, h, t, f):
        return self.pad(h, self.model.diffusion(self.split(h)[0]), 1.0)

    def derivative(self, h, t, f):
        return self.pad(h, self.model.diffusion.derivative(self.split(h)[0]), 0.0)

    def prior_drift(self, h, t):
        return self.pad(h, self.model.prior_drift(self.split(h)[0]), 0.0)

    def terms(self):
        return SDETerms(self.drift, self.diffusion, self.derivative, self.model.sde_variables())


class ZeroPaddedPath(brownian.BrownianPath):
    """A path's increments followed by `padding` zero components (state components that take no noise)."""

    def __init__(self, path, padding):
        self.path, self.padding, self.num_steps = path, padding, path.num_steps

    def increment(self, n):
        dW = self.path.increment(n)
        return ops.concatenate([dW, ops.repeat(ops.zeros_like(dW[..., :1]), self.padding, axis=-1)], axis=-1)


class SampleSeeds:
    """Successive per-draw seeds: [seed, 0], [seed, 1], ... from an int seed, or fresh ones from the model's generator."""

    def __init__(self, model, seed):
        self.model, self.count = model, 0
        self.seed = None if seed is None else validation.integer("seed", seed, minimum=0, maximum=brownian.MAX_SEED)

    def next(self):
        if self.seed is None:
            return self.model.noise_seed()
        self.count += 1
        return np.array([self.seed, self.count - 1], "int32")


INITIAL_STATES = ("inferred", "observed")


def brownian_normal(seed, like):
    """A standard normal draw with the shape and dtype of `like`, from a per-call seed (stateless, as the paths)."""
    return brownian.Gaussian().path(seed, backend.get().random_shape(like), like.dtype, 1, 1.0).increment(0)


def standard_noise(likelihood, next_seed, like):
    """A draw of the likelihood's standardised noise (scale 1) with `like`'s shape, from seeds `next_seed()`.

    Laplace(0, 1) as a normal scale mixture: sqrt(2 V) Z with V = (Z1^2 + Z2^2) / 2 ~ Exp(1).
    """
    normal = brownian_normal(next_seed(), like)
    if likelihood == "gaussian":
        return normal
    z1, z2 = brownian_normal(next_seed(), like), brownian_normal(next_seed(), like)
    return ops.sqrt(ops.square(z1) + ops.square(z2)) * normal


def drift_mlp(inputs, units, outputs, dtype, name):
    """Dense(units, softplus) -> Dense(units, softplus) -> Dense(outputs): torchsde's example's f_net and h_net."""
    return keras.Sequential(
        [
            torch_dense(units, inputs, dtype, activation="softplus"),
            torch_dense(units, units, dtype, activation="softplus"),
            torch_dense(outputs, units, dtype),
        ],
        name=name,
    )


def observation_times(name, times):
    """`times` as a sorted float64 NumPy array of at least two distinct finite times (ValueError otherwise)."""
    try:
        array = np.asarray(times, dtype="float64")
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 1 or len(array) < 2 or not np.all(np.isfinite(array)) or np.any(np.diff(array) <= 0):
        raise ValueError(
            f"{name} must be a 1-D array of at least 2 finite, strictly increasing times. Received: {name}={times!r}"
        )
    return array
