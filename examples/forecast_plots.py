"""Probabilistic forecasts from sampled paths: quantile bands, their coverage, figures and tables (shared by the time-series examples).

    bands = quantile_bands(paths)                    # paths: (n, ..., T, D) -> {0.05: ..., 0.25: ..., 0.5: ..., ...}
    coverage(truth, bands[0.05], bands[0.95])         # fraction of observed truth inside the 90% band
"""

import numpy as np

from keras_nsde import optional

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)  # the median and the 50% and 90% central bands


def quantile_bands(paths):
    """{q: the q-quantile over the first axis (the sampled paths)} for q in QUANTILES."""
    paths = np.asarray(paths)
    return dict(zip(QUANTILES, np.quantile(paths, QUANTILES, axis=0)))


def coverage(truth, lower, upper):
    """The fraction of the observed (non-NaN) entries of truth with lower <= truth <= upper."""
    truth = np.asarray(truth)
    seen = np.isfinite(truth)
    inside = (truth >= lower) & (truth <= upper)
    return float(np.mean(inside[seen]))


def errors(truth, prediction):
    """(MAE, RMSE) over the observed entries of truth."""
    seen = np.isfinite(truth)
    difference = (np.asarray(prediction) - np.asarray(truth))[seen]
    return float(np.mean(np.abs(difference))), float(np.sqrt(np.mean(np.square(difference))))


def new_figure(rows, columns, size):
    """(figure, axes array) on a matplotlib Figure, without pyplot (no backend chosen, no global state)."""
    figure = optional.require("matplotlib.figure", extra="plots").Figure(figsize=size)
    return figure, figure.subplots(rows, columns, squeeze=False)


def plot_forecast(ax, times, bands, color="tab:blue", label="forecast"):
    """The median as a line and the 50% and 90% bands as shaded areas."""
    ax.fill_between(times, bands[0.05], bands[0.95], color=color, alpha=0.15, linewidth=0, label=f"{label} 90%")
    ax.fill_between(times, bands[0.25], bands[0.75], color=color, alpha=0.3, linewidth=0, label=f"{label} 50%")
    ax.plot(times, bands[0.5], color=color, linewidth=1.5, label=f"{label} median")


def markdown_table(header, rows):
    """A Markdown table from a header and rows of cells (numbers formatted with 4 significant digits)."""

    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
