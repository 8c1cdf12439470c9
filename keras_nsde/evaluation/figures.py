"""The paper's figures as matplotlib PNGs: Fig. 1 (toy SDE), Fig. 3 (PGD), Fig. 4 (perturbations).

Figures are drawn on `matplotlib.figure.Figure` objects, without pyplot, so
no backend is chosen and no global matplotlib state changes.
"""

import numpy as np
import tensorflow as tf

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
        lambda h, t: h, lambda h, t, f: sigma * h, tf.fill([runs], np.float64(x0)), dW, t1=t1, return_trajectory=True
    )
    return np.linspace(0.0, t1, num_steps + 1), paths.numpy()


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


def plot_accuracy_vs_epsilon(path, curves, norm="L2"):
    """Fig. 3: accuracy under PGD against epsilon. curves: {label: {epsilon: accuracy}}."""
    fig, ax = new_figure()
    for label, accuracies in curves.items():
        epsilons = sorted(float(e) for e in accuracies)
        ax.plot(epsilons, [accuracies[e] if e in accuracies else accuracies[str(e)] for e in epsilons], marker="o", label=label)
    ax.set(xlabel=f"{norm} PGD epsilon", ylabel="accuracy", title="Accuracy under PGD", ylim=(0, 1))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_perturbation_growth(path, curves):
    """Fig. 4: ||h_t(x_adv) - h_t(x)|| against t. curves: {label: (times, norms)}."""
    fig, ax = new_figure()
    for label, (times, norms) in curves.items():
        ax.plot(times, norms, marker=".", label=label)
    ax.set(xlabel="t", ylabel="||h_t(x_adv) - h_t(x)||", title="Perturbation through the SDE block (same Brownian path)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
