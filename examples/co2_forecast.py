"""Probabilistic 52-week forecasts of the Mauna Loa weekly CO2 record with keras_nsde.models.LatentSDE.

    python examples/co2_forecast.py --out runs/co2              # minutes on 2 CPU cores
    python examples/co2_forecast.py --tiny --out /tmp/co2       # a quick run

The record (`statsmodels.datasets.co2`, weekly from March 1958 to December
2001, 59 weeks missing) is split in time: the latent SDE trains on windows
that end before 1986 (`--calibration-start`), its bands are calibrated on
forecasts of 1986-1989, and it is tested on the years after 1990 (`--split`):
at forecast origins every 13 weeks from 1992 on, it conditions on the
previous `--context` weeks and forecasts the next 52. Missing weeks stay
missing: they are NaN in the windows, left out of the likelihood and masked
for the encoder.

The latent SDE models the year-over-year change d(t) = x(t) - x(t - 52
weeks), the series' seasonal difference (as SARIMA's seasonal differencing
does): the trend becomes a slowly wandering level and the seasonal cycle
drops out, so the model's job is the growth rate's wander and the weekly
noise, which is what the forecast's uncertainty is made of. A context of
`--context` weeks gives `--context` - 52 differences; each window's
differences are centred on their context's mean and divided by one scale
from the training windows. Posterior paths given the context end in states
from which the (autonomous) prior runs 52 weeks on; decoded with the
likelihood's noise and added to the context's last 52 weeks (missing weeks
there interpolated), their quantiles give the median and the 50% and 90%
bands. A missing week makes its difference missing (NaN, masked).

Calibration (split-conformal, nothing read from the test years): the raw
bands are too narrow, even on the training windows. The model forecasts,
in the same way, from origins every 4 weeks whose 52 weeks lie in
[1986, 1990), after its training windows and before the test years; on
those weeks each band's conformal factor k is found (how far the truth lies
from the median in units of the band's half-width on its side; k is the
scores' ceil((n + 1) level)-th smallest, `forecast_plots.conformal_factor`),
one k for the 50% band and one for the 90% band, pooled over lead times.
On the test years the bands are the same model's raw bands moved about the
median by these k (q -> median + k (q - median)); the median, hence MAE and
RMSE, is unchanged. The weeks of overlapping calibration horizons are not
exchangeable with the test weeks (consecutive weeks and origins are
correlated and the test decade is less calm), so conformal prediction's
coverage guarantee does not hold exactly: the table reports raw and
calibrated coverage on the test years.

Baselines on the same contexts: seasonal naive (the same week a year
earlier) and Holt-Winters exponential smoothing with additive trend and
seasonality of period 52 (statsmodels' ExponentialSmoothing, ETS(A,A,A)
point forecasts; its bands from 500 simulated paths), fitted to the context
with the missing weeks interpolated.

Writes `co2.png` (the record and the splits; contexts, posterior
reconstructions, forecast medians and calibrated bands on three test
windows) and
`results.md` / `results.json` to --out.
"""

import argparse
import json
import os
import time
import warnings

import keras
import numpy as np

import forecast_plots
from keras_nsde import optional
from keras_nsde.models import LatentSDE

WEEKS_PER_YEAR = 52
HORIZON = 52
CALIBRATION_STRIDE = 4  # weeks between calibration forecast origins
BANDS = ((0.25, 0.75), (0.05, 0.95))  # the 50% and 90% bands, each calibrated by its own factor


def load_co2():
    """(weeks as datetime64 `(N,)`, CO2 in ppm `(N,)` with NaN for the missing weeks)."""
    co2 = optional.require("statsmodels.datasets.co2", extra="timeseries")
    series = co2.load_pandas().data["co2"]
    return series.index.values, series.to_numpy(dtype="float64")


def window_starts(weeks, first, last, length, stride):
    """Start indices of windows of `length` weeks that lie within [first, last), every `stride` weeks."""
    begin = int(np.searchsorted(weeks, np.datetime64(first)))
    end = int(np.searchsorted(weeks, np.datetime64(last)))
    return np.arange(begin, end - length + 1, stride)


def yearly_differences(windows):
    """x(t) - x(t - 52) for the windows' weeks 52, 53, ...: `(n, L - 52)`, NaN where either week is missing."""
    return windows[:, WEEKS_PER_YEAR:] - windows[:, :-WEEKS_PER_YEAR]


def normalise(differences, context, scale):
    """(differences minus the mean of their first `context` (the context's), divided by scale; those means `(n, 1)`)."""
    levels = np.nanmean(differences[:, :context], axis=1, keepdims=True)
    return (differences - levels) / scale, levels


def to_ppm(values, levels, scale, year_before):
    """Normalised differences `(..., n, T)` back to CO2 in ppm, added to the weeks a year before `(n, T)`."""
    return values * scale + levels + year_before


def build_model(length, args):
    """A LatentSDE on `length` weekly times (in years)."""
    return LatentSDE(
        np.arange(length) / WEEKS_PER_YEAR,
        latent_dim=args.latent_dim,
        context_dim=args.context_dim,
        hidden_units=args.hidden_units,
        observation_scale=0.1,
        learn_observation_scale=True,
        kl_anneal_steps=args.kl_anneal_steps,
        seed=args.seed,
    )


def train(model, windows, args):
    steps_per_epoch = int(np.ceil(len(windows) / args.batch_size))
    schedule = keras.optimizers.schedules.ExponentialDecay(args.learning_rate, steps_per_epoch, 0.97)
    model.compile(keras.optimizers.Adam(schedule, clipnorm=10.0))
    x = windows[..., None].astype("float32")
    return model.fit(x, batch_size=args.batch_size, epochs=args.epochs, verbose=2 if args.tiny else 1)


def calibration_starts(weeks, first, last, context, stride):
    """Start indices of windows whose forecast weeks (after `context`) lie within [first, last), every `stride` weeks."""
    begin = int(np.searchsorted(weeks, np.datetime64(first))) - context
    end = int(np.searchsorted(weeks, np.datetime64(last)))
    return np.arange(max(begin, 0), end - context - HORIZON + 1, stride)


def latent_sde_forecast(model, contexts, args):
    """(posterior reconstructions of the contexts, forecast paths with observation noise): normalised
    differences, `(n, windows, c)` and `(n, windows, HORIZON)`, for contexts of c differences `(windows, c)`."""
    c = contexts.shape[1]
    t = np.arange(c + HORIZON) / WEEKS_PER_YEAR
    x = contexts[..., None].astype("float32")
    reconstruction, latents = model.reconstruct(x, times=t[:c], n=args.samples, seed=1, return_latents=True)
    ends = keras.ops.convert_to_numpy(latents)[:, :, -1]
    paths = model.sample(t[c - 1 :], n=1, seed=2, z0=ends, observation_noise=True)[0]
    return keras.ops.convert_to_numpy(reconstruction)[..., 0], keras.ops.convert_to_numpy(paths)[:, :, 1:, 0]


def forecast_windows(model, windows, scale, args):
    """(posterior reconstructions of the contexts' weeks 52, 53, ... `(n, windows, c)`, forecast paths `(n, windows, HORIZON)`), in ppm."""
    c = args.context - WEEKS_PER_YEAR
    x, levels = normalise(yearly_differences(windows), c, scale)
    reconstruction, paths = latent_sde_forecast(model, x[:, :c], args)
    filled = np.stack([interpolated(w[: args.context]) for w in windows])  # the context, missing weeks interpolated
    return to_ppm(reconstruction, levels, scale, filled[:, :c]), to_ppm(paths, levels, scale, filled[:, -HORIZON:])


def interpolated(window):
    """The window with its missing weeks filled linearly (nearest value at the ends)."""
    t, seen = np.arange(len(window)), np.isfinite(window)
    return np.interp(t, t[seen], window[seen])


def seasonal_naive(contexts):
    """The same week a year earlier: the context's last 52 weeks (missing weeks interpolated)."""
    return np.stack([interpolated(c)[-HORIZON:] for c in contexts])


def holt_winters(contexts, simulations=500):
    """ETS(A,A,A) (statsmodels' Holt-Winters, period 52) per context: (point forecasts, simulated paths `(sims, n, 52)`)."""
    holtwinters = optional.require("statsmodels.tsa.holtwinters", extra="timeseries")
    points, paths = [], []
    for context in contexts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings of the optimiser on short contexts
            fit = holtwinters.ExponentialSmoothing(
                interpolated(context), trend="add", seasonal="add", seasonal_periods=WEEKS_PER_YEAR,
                initialization_method="estimated",
            ).fit()
            points.append(fit.forecast(HORIZON))
            paths.append(fit.simulate(HORIZON, repetitions=simulations, error="add", random_state=0).T)
    return np.stack(points), np.stack(paths, axis=1)


def evaluate(truth, median, bands=None):
    mae, rmse = forecast_plots.errors(truth, median)
    row = {"mae": mae, "rmse": rmse}
    if bands is not None:
        row["coverage_50"] = forecast_plots.coverage(truth, bands[0.25], bands[0.75])
        row["coverage_90"] = forecast_plots.coverage(truth, bands[0.05], bands[0.95])
    return row


def plot(path, weeks, values, splits, test, forecasts, shown):
    """The record with the (calibration start, test split) dates, and `shown` test windows: context, posterior paths, forecasts, truth."""
    figure, axes = forecast_plots.new_figure(2, len(shown), (5 * len(shown), 7.5))
    top = figure.add_subplot(2, 1, 1)
    for ax in axes[0]:
        ax.remove()
    top.plot(weeks, values, color="k", linewidth=0.6)
    calibration_start, split = splits
    top.axvline(
        np.datetime64(calibration_start), color="tab:purple", linestyle=":", label=f"train before {calibration_start[:4]} | calibrate"
    )
    top.axvline(np.datetime64(split), color="tab:red", linestyle="--", label=f"calibrate before {split[:4]} | test after")
    top.set(ylabel="CO2 (ppm)", title="Mauna Loa weekly CO2 (statsmodels.datasets.co2)")
    top.legend(loc="upper left")
    for ax, i in zip(axes[1], shown):
        start, context = test["starts"][i], test["context"]
        w = weeks[start : start + context + HORIZON]
        ax.plot(w[WEEKS_PER_YEAR:context], test["reconstruction"][:8, i].T, color="tab:green", alpha=0.3, linewidth=0.8)
        forecast_plots.plot_forecast(ax, w[context:], {q: b[i] for q, b in forecasts["latent SDE"].items()}, label="latent SDE (calibrated)")
        ax.plot(w[context:], test["naive"][i], color="tab:gray", linestyle=":", label="seasonal naive")
        ax.plot(w[context:], test["ets"][i], color="tab:orange", linestyle="--", linewidth=1, label="Holt-Winters")
        ax.plot(w[:context], test["windows"][i, :context], "k.", markersize=2, label="context")
        ax.plot(w[context:], test["windows"][i, context:], "o", color="k", fillstyle="none", markersize=2.5, label="held out")
        ax.set_title(f"forecast from {str(w[context])[:10]}")
        ax.tick_params(axis="x", labelrotation=30)
    axes[1, 0].set_ylabel("CO2 (ppm)")
    axes[1, 0].legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/co2_forecast")
    parser.add_argument("--context", type=int, default=104, help="weeks the forecast conditions on")
    parser.add_argument("--split", default="1990-01-01", help="test on forecasts after this date (origins from --context weeks later)")
    parser.add_argument("--calibration-start", default="1986-01-01",
                        help="train on windows ending before this date; calibrate the bands on forecasts of the weeks from it to --split")
    parser.add_argument("--latent-dim", type=int, default=4)
    parser.add_argument("--context-dim", type=int, default=16)
    parser.add_argument("--hidden-units", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--stride", type=int, default=2, help="weeks between the starts of training windows")
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--kl-anneal-steps", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200, help="forecast paths per window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a quick run: short windows, a small model, 1 epoch")
    args = parser.parse_args(argv)
    if args.context < WEEKS_PER_YEAR + 2:
        parser.error(f"--context must be at least {WEEKS_PER_YEAR + 2} weeks (a year, then 2 differences). Received: {args.context}")
    if np.datetime64(args.calibration_start) >= np.datetime64(args.split):
        parser.error(f"--calibration-start must be before --split. Received: {args.calibration_start} and {args.split}")
    if args.tiny:
        args.epochs, args.stride, args.hidden_units, args.context_dim, args.batch_size = 1, 200, 8, 4, 8
        args.samples, args.kl_anneal_steps = 10, 2
    return args


def main(argv=None):
    args = parse(argv)
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    weeks, values = load_co2()
    length = args.context + HORIZON

    c = args.context - WEEKS_PER_YEAR  # differences in a context
    train_starts = window_starts(weeks, "1958-01-01", args.calibration_start, length, args.stride)
    train_windows = np.stack([values[s : s + length] for s in train_starts])
    train_differences = yearly_differences(train_windows)
    scale = float(np.nanstd(normalise(train_differences, c, 1.0)[0][:, :c]))  # centred context differences
    train_x, _ = normalise(train_differences, c, scale)
    model = build_model(c + HORIZON, args)
    start = time.perf_counter()
    train(model, train_x, args)
    train_seconds = time.perf_counter() - start

    calibration = calibration_starts(weeks, args.calibration_start, args.split, args.context, CALIBRATION_STRIDE)
    starts = window_starts(weeks, args.split, "2100-01-01", length, 13)
    if args.tiny:
        calibration, starts = calibration[:4], starts[:4]
    calibration_windows = np.stack([values[s : s + length] for s in calibration])
    calibration_truth = calibration_windows[:, args.context :]
    calibration_bands = forecast_plots.quantile_bands(forecast_windows(model, calibration_windows, scale, args)[1])
    factors = {band: forecast_plots.conformal_factor(calibration_truth, calibration_bands, *band) for band in BANDS}

    windows = np.stack([values[s : s + length] for s in starts])
    truth = windows[:, args.context :]
    reconstruction, paths = forecast_windows(model, windows, scale, args)
    raw_contexts = windows[:, : args.context]
    naive = seasonal_naive(raw_contexts)
    ets, ets_paths = holt_winters(raw_contexts, simulations=50 if args.tiny else 500)

    raw = forecast_plots.quantile_bands(paths)
    forecasts = {"latent SDE": forecast_plots.widened(raw, factors), "Holt-Winters": forecast_plots.quantile_bands(ets_paths)}
    results = {
        "latent SDE, calibrated": evaluate(truth, raw[0.5], forecasts["latent SDE"]),
        "latent SDE, raw bands": evaluate(truth, raw[0.5], raw),
        "seasonal naive": evaluate(truth, naive),
        "Holt-Winters (ETS A,A,A)": evaluate(truth, ets, forecasts["Holt-Winters"]),
    }
    info = {
        "backend": keras.backend.backend(),
        "date": time.strftime("%Y-%m-%d"),
        "training_windows": len(train_windows),
        "last_training_week": str(weeks[train_starts[-1] + length - 1])[:10],
        "calibration_windows": len(calibration_windows),
        "calibration_weeks": f"{str(weeks[calibration[0] + args.context])[:10]} to {str(weeks[calibration[-1] + length - 1])[:10]}",
        "calibration_coverage_raw": {
            f"{upper - lower:.0%}": forecast_plots.coverage(calibration_truth, calibration_bands[lower], calibration_bands[upper])
            for lower, upper in BANDS
        },
        "conformal_factors": {f"{upper - lower:.0%}": k for (lower, upper), k in factors.items()},
        "epochs": args.epochs,
        "training_seconds": train_seconds,
        "test_windows": len(windows),
        "held_out_weeks": int(np.isfinite(truth).sum()),
        "first_forecast": str(weeks[starts[0] + args.context])[:10],
        "last_forecast_week": str(weeks[starts[-1] + length - 1])[:10],
        "observation_scale_ppm": float(keras.ops.convert_to_numpy(model.observation_scales())[0] * scale),
    }
    test = {"starts": starts, "context": args.context, "windows": windows, "reconstruction": reconstruction,
            "naive": naive, "ets": ets}
    shown = sorted({0, len(starts) // 2, len(starts) - 1})
    plot(os.path.join(args.out, "co2.png"), weeks, values, (args.calibration_start, args.split), test, forecasts, shown)

    header = ["forecast", "MAE (ppm)", "RMSE (ppm)", "50% band coverage", "90% band coverage"]
    rows = [[name, r["mae"], r["rmse"], r.get("coverage_50", "-"), r.get("coverage_90", "-")] for name, r in results.items()]
    table = forecast_plots.markdown_table(header, rows)
    with open(os.path.join(args.out, "results.md"), "w") as file:
        file.write(table)
    with open(os.path.join(args.out, "results.json"), "w") as file:
        json.dump({"results": results, **info}, file, indent=2)
    print(table)
    print(json.dumps(info, indent=2))
    return {"results": results, **info}


if __name__ == "__main__":
    main()
