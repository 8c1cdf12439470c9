"""SDEBlock: a Neural SDE block dh = f(h, t; w) dt + G(h, t; v) dB (paper Eq. 3)."""

import inspect
import numbers

import keras
import numpy as np
from keras import ops

from keras_nsde import backend, brownian, diffusions, gradients, solvers, validation
from keras_nsde.brownian import GivenIncrements
from keras_nsde.layers.direct_call import call_as_layer, call_layer
from keras_nsde.layers.drifts import default_drift
from keras_nsde.solvers import Grid, SaveAt, SDETerms

# Arguments that earlier releases took and that now live on the objects they configure.
MOVED_ARGUMENTS = {
    "checkpoints": "gradient=keras_nsde.gradients.Pathwise(checkpoints=...)",
    "keep_prob": "increments=keras_nsde.brownian.Bernoulli(keep_prob=...)",
    "rtol": "solver=keras_nsde.solvers.Dopri5(rtol=..., atol=...)",
    "atol": "solver=keras_nsde.solvers.Dopri5(rtol=..., atol=...)",
}


@keras.saving.register_keras_serializable(package="keras_nsde")
class SDEBlock(keras.layers.Layer):
    """Integrates dh = f(h, t; w) dt + G(h, t; v) dB from t0 to t1 with Euler-Maruyama.

    The input is h(t0), of shape `(batch, H, W, C)` or `(batch, dim)` (any
    shape with a drift of your own); the output is h(t1), of the same shape.

    Noise: on when `training=True`; off when `training=False` (the block is
    then the Neural ODE dh = f dt) unless `test_time_noise=True`. With the
    noise on, every call draws a new Brownian path from the layer's
    `keras.random.SeedGenerator`; a path can also be replayed by passing
    `noise_seed` (see `new_noise_seed`) or explicit increments `dW`.

    Args:
        drift: a Keras layer mapping h to h's shape; its `call` may take a
            keyword `t` (the time). None picks `ConvDrift` for 4-D inputs (the
            paper's drift) and `MLPDrift` for 2-D inputs.
        diffusion: "none" (Neural ODE), "additive", "multiplicative",
            "dropout", a config dict, or a `keras_nsde.diffusions.Diffusion`.
        sigma: noise level for a named diffusion (its default if None).
        t0: start of the integration interval.
        t1: its end, t1 > t0.
        num_steps: Euler-Maruyama steps N >= 1, dt = (t1 - t0) / N.
        test_time_noise: keep the noise on when `training` is False.
        return_trajectory: return all N + 1 states, shape
            `(batch, num_steps + 1) + state_shape`, instead of h(t1).
        seed: int seed of the Brownian paths; None draws one at random.
        gradient: how the solve is differentiated, a `keras_nsde.gradients`
            method or its name: "autodiff" (backprop through the unrolled
            steps, O(N) memory), "pathwise" (Theorem 3.1, recomputes instead
            of storing; `Pathwise(checkpoints=C)`), or "reversible" (with
            solver="reversible_heun": exact, O(1) stored states).
        solver: a `keras_nsde.solvers` solver or its name: "euler_maruyama"
            (Itô, strong order 1/2), "milstein" (Itô, strong order 1 for
            elementwise diffusions), "reversible_heun" (algebraically
            reversible; Stratonovich unless `ReversibleHeun(interpretation="ito")`),
            or "dopri5" (`Dopri5(rtol, atol)`: TFP's adaptive Dormand-Prince
            with adjoint gradients, for diffusion="none" only; the number of
            drift evaluations of the last call is in `block.nfe`).
        increments: a `keras_nsde.brownian` increments kind or its name:
            "gaussian" (Brownian increments) or "bernoulli" (standardised
            dropout masks, `Bernoulli(keep_prob=p)`).
        **kwargs: base `Layer` arguments (name, dtype, ...).

    Call arguments:
        inputs: h(t0), a floating tensor.
        training: Python bool; turns the noise on.
        noise_seed: int32 tensor of shape (2,), or an int: use this Brownian
            path instead of a fresh one. Same seed and same batch shape, same
            path, so two inputs can share one path (paper Section 3.3).
        dW: explicit increments of shape `(num_steps,) + inputs.shape`, each of
            variance dt.
        A given `noise_seed` or `dW` turns the noise on for that call.
    """

    def __init__(
        self,
        drift=None,
        diffusion="none",
        sigma=None,
        t0=0.0,
        t1=1.0,
        num_steps=11,
        test_time_noise=False,
        return_trajectory=False,
        seed=None,
        gradient="autodiff",
        solver="euler_maruyama",
        increments="gaussian",
        **kwargs,
    ):
        moved = sorted(set(kwargs) & set(MOVED_ARGUMENTS))
        if moved:
            raise ValueError(
                f"SDEBlock no longer takes {', '.join(moved)}: pass "
                f"{'; '.join(sorted({MOVED_ARGUMENTS[name] for name in moved}))}. "
                f"Received: {', '.join(f'{name}={kwargs[name]!r}' for name in moved)}"
            )
        super().__init__(**kwargs)
        backend.get()  # a ValueError on a backend keras_nsde does not run on
        if drift is not None and not isinstance(drift, keras.layers.Layer):
            raise ValueError(f"drift must be a keras.layers.Layer or None. Received: drift={drift!r}")
        self.grid = Grid(t0, t1, num_steps)  # checks t0 < t1 (finite) and num_steps >= 1
        seed = None if seed is None else validation.integer("seed", seed, minimum=0, maximum=brownian.MAX_SEED)
        self.drift = drift
        self.uses_default_drift = drift is None
        if not keras.backend.is_float_dtype(self.compute_dtype):
            raise ValueError(f"SDEBlock computes in a floating dtype. Received: dtype={self.compute_dtype}")
        self.diffusion = diffusions.get(diffusion, sigma=sigma, dtype=self.dtype_policy)
        check_diffusion_signature(self.diffusion)
        self.t0, self.t1, self.num_steps = self.grid.t0, self.grid.t1, self.grid.num_steps
        self.test_time_noise = validation.boolean("test_time_noise", test_time_noise)
        self.return_trajectory = validation.boolean("return_trajectory", return_trajectory)
        self.seed = seed
        self.solver = solvers.get(solver)
        self.gradient = gradients.get(gradient)
        self.increments = brownian.get(increments)
        self.gradient.check(self.solver)
        self.solver.check(self.diffusion)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._drift_checked = False

    @property
    def dt(self):
        return self.grid.dt

    def build(self, input_shape):
        if self.drift is None:
            self.drift = default_drift(input_shape, dtype=self.dtype_policy)
        drift_parameters = inspect.signature(self.drift.call).parameters
        self.drift_takes_time = "t" in drift_parameters
        self.drift_call_is_plain = not {"training", "mask"} & set(drift_parameters)
        drift_output = self._symbolic_drift_call(input_shape)
        if tuple(drift_output.shape[1:]) != tuple(input_shape[1:]):
            raise ValueError(
                "The drift must map h to h's shape. Received: a drift with output shape "
                f"{tuple(drift_output.shape)} for input_shape={tuple(input_shape)}"
            )
        if not self.diffusion.built:
            self.diffusion.build(input_shape)
        # The weights fix the state's rank and channels (the last axis); spatial sizes may vary.
        self.input_spec = keras.layers.InputSpec(ndim=len(input_shape), axes={-1: input_shape[-1]})
        for name in self.solver.statistics:  # the last call's solver statistics, e.g. Dopri5's `nfe`
            setattr(self, name, self.add_weight(name=name, shape=(), dtype="int32", initializer="zeros", trainable=False))
        self.built = True

    def _symbolic_drift_call(self, input_shape):
        """Calls the drift on symbolic tensors: builds it and gives its output shape."""
        h = keras.KerasTensor(input_shape, dtype=self.compute_dtype)
        t = keras.KerasTensor((), dtype=self.compute_dtype)
        return self.drift(h, t=t) if self.drift_takes_time else self.drift(h)

    def drift_fn(self, h, t):
        """f(h, t; w), in h's dtype even if the drift has another dtype policy.

        A drift whose `call` takes no `training` or `mask` (which `__call__`
        fills in from the call context) is called through `call` where
        `direct_call.can_call_directly` allows: the solver calls it at every
        step, and Keras' per-call bookkeeping is most of an eager step's time.
        """
        call = call_layer if self.drift_call_is_plain else call_as_layer
        f = call(self.drift, h, t=t) if self.drift_takes_time else call(self.drift, h)
        return f if f.dtype == h.dtype else ops.cast(f, h.dtype)

    def diffusion_fn(self, h, t, f):
        """G(h, t; v), in h's dtype even if the diffusion has another dtype policy."""
        g = call_layer(self.diffusion, h, t, f)
        if not hasattr(g, "shape"):
            raise ValueError(
                f"The diffusion {self.diffusion.name!r} must return G, a tensor with the state's shape "
                f"{tuple(h.shape)}. Received: G={g!r}"
            )
        if not same_static_shape(g.shape, h.shape):
            raise ValueError(
                f"The diffusion {self.diffusion.name!r} must return G with the state's shape (diagonal noise, "
                f"G * dW elementwise). Received: G of shape {tuple(g.shape)} for a state of shape {tuple(h.shape)}"
            )
        return g if g.dtype == h.dtype else ops.cast(g, h.dtype)

    def diffusion_derivative_fn(self, h, t, f):
        """dG_i/dh_i in h's dtype, or None when the diffusion has no closed form."""
        derivative = self.diffusion.derivative(h, t, f)
        if derivative is None:
            return None
        if not same_static_shape(getattr(derivative, "shape", ()), h.shape):
            raise ValueError(
                f"The derivative of diffusion {self.diffusion.name!r} must return dG/dh with the state's shape "
                f"(elementwise). Received: dG/dh={derivative!r} of shape {tuple(getattr(derivative, 'shape', ()))} "
                f"for a state of shape {tuple(h.shape)}"
            )
        return ops.cast(derivative, h.dtype)

    def new_noise_seed(self):
        """A fresh per-call seed (int32, shape (2,)): the SeedGenerator's state (seed, count of calls).

        The backend's samplers hash both words (Philox keys on TensorFlow,
        threefry keys on JAX, SplitMix64 on PyTorch), so blocks with seeds s
        and s + 1 draw independent paths at every call. Under a
        multi-replica tf.distribute strategy the replica id is folded in, so
        the replicas' shares of a batch draw independent paths.
        """
        seed = ops.cast(self.seed_generator.next(), "int32")
        return backend.get().replica_seed(seed)

    def brownian_path(self, h0, noise_seed=None, dW=None):
        """The Brownian increments of one call: given, replayed from a seed, or fresh."""
        if noise_seed is not None and dW is not None:
            raise ValueError(
                "Pass noise_seed or dW, not both: dW fixes the increments, noise_seed draws them. "
                f"Received: noise_seed={noise_seed!r} and a dW"
            )
        if dW is not None:
            dW = increments_tensor(dW, h0.dtype)
            self._check_increments_shape(dW, h0)
            return GivenIncrements(dW)
        noise_seed = self.new_noise_seed() if noise_seed is None else brownian.as_seed(noise_seed)
        return self.increments.path(noise_seed, backend.get().random_shape(h0), h0.dtype, self.num_steps, self.grid.step_sizes)

    def _check_increments_shape(self, dW, h0):
        expected = (self.num_steps,) + tuple(h0.shape)
        received = tuple(dW.shape)
        if not same_static_shape(received, expected):
            raise ValueError(
                "dW must have shape (num_steps,) + inputs.shape = "
                f"{expected}. Received: dW with shape {received} for inputs of shape {tuple(h0.shape)} "
                f"and num_steps={self.num_steps}"
            )

    def _check_fields_are_finite(self, h0):
        """On the first eager call with finite inputs: a drift or diffusion returning NaN or inf is an error, not NaN weights.

        Returns whether the check ran (it does not for non-finite inputs, which
        do not show whether the drift is to blame).
        """
        if not bool(ops.all(ops.isfinite(h0))):
            return False
        t0 = ops.convert_to_tensor(self.t0, h0.dtype)
        f = self.drift_fn(h0, t0)
        if not bool(ops.all(ops.isfinite(f))):
            raise ValueError(
                f"The drift {self.drift.name!r} returned NaN or inf at t0={self.t0} for finite inputs, "
                "so the solve would be NaN. Check the drift's layers and weights (for example a log, "
                "division or exponential of the state, or weights that have diverged)."
            )
        if self.diffusion.is_noisy and not bool(ops.all(ops.isfinite(self.diffusion_fn(h0, t0, f)))):
            raise ValueError(
                f"The diffusion {self.diffusion.name!r} returned NaN or inf at t0={self.t0} for finite inputs, "
                "so the solve would be NaN. Check its call(h, t, f) and its weights."
            )
        return True

    def __call__(self, inputs, *args, **kwargs):
        """Keras' call, with h(t0) given as nested Python lists taken as an array (Keras reads a list as several inputs)."""
        if isinstance(inputs, (list, tuple)):
            try:
                array = np.asarray(inputs) if all(isinstance(x, (list, tuple, numbers.Real)) for x in inputs) else None
            except ValueError:  # ragged
                array = None
            if array is None or array.dtype.kind not in "fiub":
                raise ValueError(
                    "SDEBlock takes one input h(t0), a tensor or array. "
                    f"Received: inputs={type(inputs).__name__} of {[type(x).__name__ for x in inputs][:4]}"
                )
            inputs = array.astype(self.compute_dtype) if array.dtype.kind == "f" else array
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, noise_seed=None, dW=None):
        if not keras.backend.is_float_dtype(inputs.dtype):
            raise ValueError(
                f"SDEBlock needs floating inputs. Received: inputs.dtype={keras.backend.standardize_dtype(inputs.dtype)}"
            )
        backend.get().check_dtype(self.compute_dtype)
        training = validation.optional_boolean("training", training)
        if not self._drift_checked and backend.get().executing_eagerly(inputs):
            self._drift_checked = self._check_fields_are_finite(inputs)
        path_given = noise_seed is not None or dW is not None
        if path_given and not self.diffusion.is_noisy:
            raise ValueError(
                "noise_seed and dW need a noisy diffusion. Received: "
                f"diffusion={type(self.diffusion).__name__} with a given Brownian path"
            )
        noisy = self.diffusion.is_noisy and (bool(training) or self.test_time_noise or path_given)
        path = self.brownian_path(inputs, noise_seed, dW) if noisy else None
        return self.solve(inputs, path)

    def terms(self):
        """The block's vector fields as `SDETerms` (f, G, dG/dh) for a solver."""
        return SDETerms(
            self.drift_fn, self.diffusion_fn, self.diffusion_derivative_fn, tuple(self.trainable_variables)
        )

    def solve(self, h0, path, gradient=None):
        """h(t1), or the trajectory, from h0 on a given Brownian path (None: no noise).

        Eq. (3), one solver step at a time: drift, diffusion, increment, step.
        `gradient` (a method or its name) overrides the block's gradient method.
        The solver's statistics (Dopri5's `nfe`) are kept in the block's weights of those names.
        """
        saveat = SaveAt(steps=self.return_trajectory)
        solution = solvers.solve(self.terms(), self.solver, path, h0, self.grid, saveat, gradient or self.gradient)
        for name, value in solution.stats.items():
            getattr(self, name).assign(ops.cast(value, "int32"))
        return ops.moveaxis(solution.ys, 0, 1) if self.return_trajectory else solution.ys

    def trajectory(self, h0, path=None):
        """All N + 1 states on `path` (None: no noise), time-major `(num_steps + 1,) + h0.shape`, by autodiff."""
        return solvers.solve(self.terms(), self.solver, path, h0, self.grid, SaveAt(steps=True)).ys

    def compute_output_shape(self, input_shape):
        if self.return_trajectory:
            return (input_shape[0], self.num_steps + 1) + tuple(input_shape[1:])
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "drift": None if self.uses_default_drift else keras.saving.serialize_keras_object(self.drift),
            "diffusion": diffusions.serialize(self.diffusion),
            "t0": self.t0,
            "t1": self.t1,
            "num_steps": self.num_steps,
            "test_time_noise": self.test_time_noise,
            "return_trajectory": self.return_trajectory,
            "seed": self.seed,
            "gradient": keras.saving.serialize_keras_object(self.gradient),
            "solver": keras.saving.serialize_keras_object(self.solver),
            "increments": keras.saving.serialize_keras_object(self.increments),
        }

    @classmethod
    def from_config(cls, config):
        config = upgrade_config(config)
        if config.get("drift") is not None:
            config["drift"] = keras.saving.deserialize_keras_object(config["drift"])
        return cls(**config)


def check_diffusion_signature(diffusion):
    """A ValueError unless the diffusion's `call` takes (h, t, f), as the solvers call it."""
    try:
        inspect.signature(diffusion.call).bind(None, None, None)
    except TypeError:
        raise ValueError(
            f"A diffusion's call must take (h, t, f): the state, the time and the drift at that point. "
            f"Received: diffusion={diffusion.name!r} with call{inspect.signature(diffusion.call)}"
        ) from None


def increments_tensor(dW, dtype):
    """dW as a tensor of `dtype`, or a ValueError naming it (a ragged list, strings)."""
    try:
        return ops.convert_to_tensor(dW, dtype)
    except Exception as error:  # each backend raises its own kind for what it cannot convert
        raise ValueError(
            f"dW must be a tensor or array of increments of shape (num_steps,) + inputs.shape. "
            f"Received: dW={dW!r} ({type(error).__name__}: {error})"
        ) from None


def same_static_shape(a, b):
    """Whether two static shapes can be equal: the same rank, equal where both sizes are known."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def upgrade_config(config):
    """A config of an earlier release (names plus checkpoints, keep_prob, rtol, atol) in today's form."""
    config = dict(config)
    checkpoints, keep_prob = config.pop("checkpoints", None), config.pop("keep_prob", None)
    rtol, atol = config.pop("rtol", None), config.pop("atol", None)
    if config.get("gradient") == "pathwise" and checkpoints is not None:
        config["gradient"] = gradients.Pathwise(checkpoints)
    if config.get("increments") == "bernoulli" and keep_prob is not None:
        config["increments"] = brownian.Bernoulli(keep_prob)
    if config.get("solver") == "dopri5":
        config["solver"] = solvers.Dopri5(rtol=1e-3 if rtol is None else rtol, atol=1e-6 if atol is None else atol)
    return config

