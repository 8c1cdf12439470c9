"""The paper's figures as matplotlib PNGs: Fig. 1 (toy SDE), Fig. 3 (PGD), Fig. 4 (perturbations).

Figures are drawn on `matplotlib.figure.Figure` objects, without pyplot, so
no backend is chosen and no global matplotlib state changes.
"""

import numpy as np
from keras import ops

from keras_nsde import optional
from keras_nsde.solvers import euler_maruyama


def new_figure(figsize=(6, 4)):
    """(figure, axes): a matplotlib Figure with one Axes; save it with `figure.savefig(path)`."""
    figure = optional.require("matplotlib.figure", extra="plots").Figure(figsize=figsize)
    return figure, figure.subplots()


def toy_paths(sigma, runs=200, num_steps=2000, t1=5.0, x0=1.0, seed=0):
    """Euler-Maruyama paths of dx = x dt + sigma x dB: times `(N + 1,)`, paths `(N + 1, runs)`.

    Fine steps by default: at sigma = 2.8 the scheme's bias in log|x| grows
    like sigma^4 dt and is visible against the exact rate when dt is coarse.
    """
    rng = np.random.default_rng(seed)
    dW = rng.normal(0.0, np.sqrt(t1 / num_steps), size=(num_steps, runs))
    paths = euler_maruyama(
        lambda h, t: h, lambda h, t, f: sigma * h, np.full(runs, x0, dtype=np.float64), dW, t1=t1, return_trajectory=True
    )
    return np.linspace(0.0, t1, num_steps + 1), ops.convert_to_numpy(paths)


def plot_toy(path, sigmas=(0.0, 2.8), runs=200, t1=5.0):
    """Fig. 1: median and sample paths of |x_t| on a log scale; x_t -> 0 a.s. when sigma^2 > 2 (Ito)."""
    fig, ax = new_figure()
    for sigma, color in zip(sigmas, ("tab:red", "tab:blue")):
        times, paths = toy_paths(sigma, runs=runs, t1=t1)
        magnitude = np.abs(paths) + 1e-300
        ax.semilogy(times, magnitude[:, :10], color=color, alpha=0.15, linewidth=0.8)
        ax.semilogy(times, np.median(magnitude, axis=1), color=color, linewidth=2, label=f"sigma={sigma}: median of {runs} runs")
        ax.semilogy(times, np.exp((1 - sigma**2 / 2) * times), color=color, linestyle="--", label="exp((1 - sigma^2/2) t)")
    ax.set(xlabel="t", ylabel="|x_t|", title="dx = x dt + sigma x dB: decays a.s. iff sigma^2 > 2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# One colour per model and one line style per attack, the same in every figure.
MODEL_COLOURS = {"ODE": "black", "additive": "tab:blue", "multiplicative": "tab:orange", "dropout": "tab:green"}
ATTACK_STYLES = {"PGD": ":", "PGD+EOT": "-", "SPSA": "--"}


def plot_accuracy_vs_epsilon(path, curves, norm="L2", caption=None):
    """Fig. 3: accuracy against epsilon, a line per (model, attack) with a band.

    Args:
        curves: {model: {attack: {"epsilons": [...], "mean": [...], "low": [...],
            "high": [...]}}}, accuracies in [0, 1]; models and attacks named as in
            `MODEL_COLOURS` and `ATTACK_STYLES` (others get matplotlib's defaults).
        caption: a line under the title (sizes, seeds, what the band is).
    """
    fig, ax = new_figure((7, 4.5))
    for model, attacks in curves.items():
        colour = MODEL_COLOURS.get(model)
        for attack, curve in attacks.items():
            epsilons = np.asarray(curve["epsilons"], dtype=float)
            ax.plot(epsilons, curve["mean"], color=colour, linestyle=ATTACK_STYLES.get(attack, "-"), marker="o",
                    markersize=3, label=f"{model}, {attack}")
            ax.fill_between(epsilons, curve["low"], curve["high"], color=colour, alpha=0.12, linewidth=0)
    ax.set(xlabel=f"{norm} epsilon", ylabel="accuracy", ylim=(0, 1))
    ax.set_title("Accuracy under attack" + (f"\n{caption}" if caption else ""), fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_perturbation_growth(path, curves, caption=None, quantiles=(0.25, 0.75)):
    """Fig. 4: ||h_t(x_adv) - h_t(x)|| against t, median over images with a quantile band.

    Args:
        curves: {model: (times `(N + 1,)`, norms `(N + 1, images)`)}.
        caption: a line under the title.
        quantiles: the band's lower and upper quantiles over the images.
    """
    fig, ax = new_figure()
    for model, (times, norms) in curves.items():
        norms = np.asarray(norms)
        colour = MODEL_COLOURS.get(model)
        ax.plot(times, np.median(norms, axis=1), color=colour, marker=".", label=f"{model} (median)")
        low, high = np.quantile(norms, quantiles, axis=1)
        ax.fill_between(times, low, high, color=colour, alpha=0.15, linewidth=0)
    ax.set(xlabel="t", ylabel="||h_t(x_adv) - h_t(x)||")
    band = f"band: {int(100 * quantiles[0])}-{int(100 * quantiles[1])}% of images"
    ax.set_title("Perturbation through the SDE block (same Brownian path)\n" + (caption + "; " if caption else "") + band,
                 fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
