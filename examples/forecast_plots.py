"""Probabilistic forecasts from sampled paths: quantile bands, their coverage, figures and tables (shared by the time-series examples).

    bands = quantile_bands(paths)                    # paths: (n, ..., T, D) -> {0.05: ..., 0.25: ..., 0.5: ..., ...}
    coverage(truth, bands[0.05], bands[0.95])         # fraction of observed truth inside the 90% band
    k = conformal_factor(truth, bands, 0.05, 0.95)    # on calibration forecasts: widen the 90% band by k
    widened(bands, {(0.05, 0.95): k})                 # applied to other forecasts of the same model
"""

import math

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


def conformal_factor(truth, bands, lower, upper):
    """The split-conformal factor k by which the band [q_lower, q_upper] must be widened about the median to cover upper - lower.

    Each observed entry's score is how far truth y lies from the median m
    in units of the band's half-width on its side, s = (y - m) / (q_upper - m)
    above the median and (m - y) / (m - q_lower) below; the band
    m + k (q - m) holds y exactly when s <= k. k is the ceil((n + 1) (upper
    - lower))-th smallest of the n scores, split-conformal prediction's
    quantile: for a new forecast whose score is exchangeable with these,
    the widened band covers with probability at least upper - lower. k < 1
    narrows an over-dispersed band.
    """
    truth, median = np.asarray(truth), bands[0.5]
    seen = np.isfinite(truth)
    above = truth >= median
    width = np.where(above, bands[upper] - median, median - bands[lower])
    scores = (np.abs(truth - median) / np.maximum(width, np.finfo("float64").tiny))[seen]
    rank = math.ceil((len(scores) + 1) * (upper - lower))
    if rank > len(scores):
        raise ValueError(
            f"conformal_factor needs at least {math.ceil(1 / (1 - (upper - lower))) - 1} observed entries of truth "
            f"for a {upper - lower:.0%} band. Received: {len(scores)}"
        )
    return float(np.sort(scores)[rank - 1])


def widened(bands, factors):
    """The bands with each (lower, upper) pair in `factors` moved about the median: q -> m + k (q - m)."""
    result = dict(bands)
    for (lower, upper), k in factors.items():
        for q in (lower, upper):
            result[q] = bands[0.5] + k * (bands[q] - bands[0.5])
    return result


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
