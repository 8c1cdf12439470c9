"""A latent SDE on the stochastic Lorenz attractor (Li et al. 2020, Section 7.2; torchsde's examples/latent_sde_lorenz.py).

    python examples/latent_sde_lorenz.py --out runs/lorenz           # 1000 steps: minutes on 2 CPU cores
    python examples/latent_sde_lorenz.py --tiny --out /tmp/lorenz     # a few seconds of training

torchsde's data and sizes: 128 sequences of dx = a(x) dt + diag(b x) dW from
x(0) ~ N(0, I) at 50 times in [0, 1], normalised per dimension, plus
N(0, 0.01^2) noise; a GRU encoder of 128 units, a context of 64, drift
networks of 128 units, a Gaussian likelihood of scale 0.01, Adam at 1e-2
decaying by 0.999 per step, the KL weight annealed over 500 steps, every step
on the whole data set. As in torchsde's example, the SDEs live in the data
space and start at the first observation (`initial_state="observed"`: z(t0) =
x(t0), no q(z0) and no initial KL; `--initial-state inferred` draws z(t0)
from q(z0 | x) in a latent space of `--latent-dim` and decodes it). Trained on all of [0, 1], the model is then asked to
forecast the second half of each sequence from the first: the posterior
given x(t <= 0.49) gives the state at t = 0.49, and the prior runs on.

Writes `lorenz.png` (observations, posterior reconstructions, forecast
median with 50% and 90% bands) and `results.md` / `results.json` to --out.
"""

import argparse
import json
import math
import os
import time

import keras
import numpy as np

import forecast_plots
from keras_nsde.models import LatentSDE

LORENZ_DRIFT = (10.0, 28.0, 8.0 / 3.0)  # a: sigma, rho, beta
LORENZ_NOISE = (0.1, 0.28, 0.3)  # b: diag(b x) dW


def lorenz_drift(x, a=LORENZ_DRIFT):
    a1, a2, a3 = a
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    return np.stack([a1 * (x2 - x1), a2 * x1 - x2 - x1 * x3, x1 * x2 - a3 * x3], axis=1)


def lorenz_data(batch_size=128, num_times=50, noise_std=0.01, dt=1e-3, seed=0):
    """torchsde's data: (xs `(batch, T, 3)` float32, ts `(T,)`) of the stochastic Lorenz attractor.

    Itô SDE dx = a(x) dt + diag(b x) dW from x(0) ~ N(0, I), solved by
    Milstein (strong order 1 for this diagonal noise: the correction is
    b_i^2 x_i (dW^2 - dt) / 2) with steps of at most `dt` through the
    observation times (torchsde: SRK, dt = 1e-3); then normalised by the mean
    and standard deviation of each dimension over sequences and times, and
    N(0, noise_std^2) added.
    """
    rng = np.random.default_rng(seed)
    ts = np.linspace(0.0, 1.0, num_times)
    b = np.asarray(LORENZ_NOISE)
    x = rng.normal(size=(batch_size, 3))
    states = [x]
    for t0, t1 in zip(ts[:-1], ts[1:]):
        steps = int(np.ceil((t1 - t0) / dt - 1e-9))
        h = (t1 - t0) / steps
        for _ in range(steps):
            dW = rng.normal(scale=np.sqrt(h), size=x.shape)
            x = x + lorenz_drift(x) * h + b * x * dW + 0.5 * b**2 * x * (dW**2 - h)
        states.append(x)
    xs = np.stack(states, axis=1)
    mean, std = xs.mean(axis=(0, 1)), xs.std(axis=(0, 1), ddof=1)
    xs = (xs - mean) / std + noise_std * rng.normal(size=xs.shape)
    return xs.astype("float32"), ts


def build_model(ts, args):
    return LatentSDE(
        ts,
        latent_dim=3 if args.initial_state == "observed" else args.latent_dim,
        context_dim=args.context_dim,
        hidden_units=args.hidden_units,
        observation_scale=args.noise_std,
        kl_anneal_steps=args.kl_anneal_steps,
        max_step=(ts[1] - ts[0]) / args.steps_per_interval,
        solver=args.solver,
        gradient=args.gradient,
        seed=args.seed,
        initial_state=args.initial_state,
    )


class StepTimes(keras.callbacks.Callback):
    """Wall time of every training step (the first includes tracing and compilation)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def train(model, xs, steps, learning_rate, verbose=1):
    """`steps` Adam steps, each on the whole data set (torchsde's example); returns the per-step wall times."""
    schedule = keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps=1, decay_rate=0.999)
    model.compile(keras.optimizers.Adam(schedule, epsilon=1e-8))
    steps_per_epoch = math.gcd(steps, 50)  # epochs of whole steps, to see progress
    repeated = np.concatenate([xs] * steps_per_epoch)
    timer = StepTimes()
    model.fit(repeated, batch_size=len(xs), epochs=steps // steps_per_epoch, shuffle=False, verbose=verbose, callbacks=[timer])
    return timer.times


def elbo_pieces(model, xs, samples, seed=0):
    """The ELBO and its pieces (KL weight 1), each averaged over the sequences and `samples` posterior paths."""
    return {name: float(np.mean(keras.ops.convert_to_numpy(v))) for name, v in model.elbo(xs, n=samples, seed=seed).items()}


def forecast_second_half(model, xs, ts, samples, seed=0):
    """Posterior paths on the first half and prior forecasts from their end state over the second half.

    Returns (split index k, reconstructions `(n, batch, k, 3)`, forecasts `(n, batch, T - k + 1, 3)`
    at ts[k - 1:], with the observation noise).
    """
    k = len(ts) // 2
    reconstruction, latents = model.reconstruct(xs[:, :k], times=ts[:k], n=samples, seed=seed, return_latents=True)
    ends = keras.ops.convert_to_numpy(latents)[:, :, -1]
    forecast = model.sample(ts[k - 1 :], n=1, seed=seed + 1, z0=ends, observation_noise=True)[0]
    return k, keras.ops.convert_to_numpy(reconstruction), keras.ops.convert_to_numpy(forecast)


def plot(path, xs, ts, k, reconstruction, forecast, sequences=(0, 1)):
    figure, axes = forecast_plots.new_figure(3, len(sequences), (5 * len(sequences), 7))
    bands = forecast_plots.quantile_bands(forecast)
    for column, i in enumerate(sequences):
        for dim in range(3):
            ax = axes[dim, column]
            ax.plot(ts[:k], reconstruction[:8, i, :, dim].T, color="tab:green", alpha=0.35, linewidth=0.8)
            forecast_plots.plot_forecast(ax, ts[k - 1 :], {q: b[i, :, dim] for q, b in bands.items()})
            ax.plot(ts[:k], xs[i, :k, dim], "k.", markersize=4, label="observed")
            ax.plot(ts[k:], xs[i, k:, dim], "o", color="k", fillstyle="none", markersize=4, label="held out")
            ax.set_ylabel(f"$x_{dim + 1}$")
            if dim == 0:
                ax.set_title(f"sequence {i}: posterior paths (green) | forecast")
        axes[2, column].set_xlabel("t")
    axes[0, 0].legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/latent_sde_lorenz")
    parser.add_argument("--steps", type=int, default=1000, help="training steps (torchsde's example: 5000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-times", type=int, default=50)
    parser.add_argument("--context-dim", type=int, default=64)
    parser.add_argument("--hidden-units", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--kl-anneal-steps", type=int, default=500)
    parser.add_argument("--noise-std", type=float, default=0.01)
    parser.add_argument("--steps-per-interval", type=int, default=2, help="solver steps between observations (98 in all)")
    parser.add_argument("--initial-state", choices=["observed", "inferred"], default="observed",
                        help="z(t0) = x(t0) (torchsde's example) or drawn from q(z0 | x)")
    parser.add_argument("--latent-dim", type=int, default=4, help="latent dimension with --initial-state inferred")
    parser.add_argument("--solver", default="euler_maruyama")
    parser.add_argument("--gradient", default="autodiff")
    parser.add_argument("--samples", type=int, default=100, help="posterior/forecast paths per sequence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a quick run: small data, model and training")
    return parser


def parse(argv=None):
    """The command line's settings; --tiny shrinks the data, the model and the training."""
    args = parser().parse_args(argv)
    if args.tiny:
        args.steps, args.batch_size, args.num_times, args.context_dim, args.hidden_units = 4, 8, 10, 4, 8
        args.kl_anneal_steps, args.samples = 2, 5
    return args


def main(argv=None):
    args = parse(argv)
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    xs, ts = lorenz_data(args.batch_size, args.num_times, args.noise_std, seed=args.seed)
    model = build_model(ts, args)
    step_times = train(model, xs, args.steps, args.learning_rate, verbose=2 if args.tiny else 1)
    pieces = elbo_pieces(model, xs, samples=10)
    k, reconstruction, forecast = forecast_second_half(model, xs, ts, args.samples, seed=args.seed)
    bands = forecast_plots.quantile_bands(forecast[:, :, 1:])  # the held-out times ts[k:]
    held_out = xs[:, k:]
    results = {
        "backend": keras.backend.backend(),
        "steps": len(step_times),
        "seconds_per_step": float(np.median(step_times[1:])) if len(step_times) > 1 else float(step_times[0]),
        "first_step_seconds": float(step_times[0]),
        **pieces,
        "coverage_50": forecast_plots.coverage(held_out, bands[0.25], bands[0.75]),
        "coverage_90": forecast_plots.coverage(held_out, bands[0.05], bands[0.95]),
        "forecast_mae": forecast_plots.errors(held_out, bands[0.5])[0],
        "date": time.strftime("%Y-%m-%d"),
    }
    plot(os.path.join(args.out, "lorenz.png"), xs, ts, k, reconstruction, forecast)
    header = ["backend", "steps", "ELBO", "log p(x|z)", "path KL", "z0 KL", "s/step", "50% cover", "90% cover", "MAE"]
    row = [results[key] for key in ("backend", "steps", "elbo", "log_likelihood", "path_kl", "initial_kl")]
    row += [results[key] for key in ("seconds_per_step", "coverage_50", "coverage_90", "forecast_mae")]
    table = forecast_plots.markdown_table(header, [row])
    with open(os.path.join(args.out, "results.md"), "w") as file:
        file.write(table)
    with open(os.path.join(args.out, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    print(table)
    return results


if __name__ == "__main__":
    main()
