"""Paired comparisons of two models evaluated on the same training seeds and the same images.

A model's result is a 0/1 array `correct[seed, image]` (1 where the image was
classified correctly). Two models trained with the same seeds (same initial
weights and batch order) and attacked on the same images give paired
differences d[s, i] = correct_b[s, i] - correct_a[s, i]; their mean is the
difference in accuracy.
"""

import math

import numpy as np

from keras_nsde import optional
from keras_nsde.evaluation import arguments


def bootstrap_interval(values, level=0.95, resamples=4000, seed=0):
    """Mean of a (seeds, images) array and its `level` interval, bootstrapping seeds and images.

    Each resample draws the seeds with replacement and, independently, the
    images with replacement, and takes the mean over the drawn grid: both
    the training-seed and the test-image variation enter the interval. With
    few seeds the seed variation is under-represented; `paired_t_interval`
    over per-seed means is the conservative companion.

    Returns:
        (mean, low, high).
    """
    level = _level(level)
    resamples = arguments.integer("resamples", resamples)
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"values must be a non-empty (seeds, images) array. Received: shape {values.shape}")
    rng = np.random.default_rng(seed)
    seeds, images = values.shape
    means = np.empty(resamples)
    for r in range(resamples):
        rows = rng.integers(0, seeds, seeds)
        columns = rng.integers(0, images, images)
        means[r] = values[np.ix_(rows, columns)].mean()
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(values.mean()), float(low), float(high)


def paired_t_interval(values, level=0.95):
    """Mean over seeds of the per-seed means of a (seeds, images) array, with a Student-t interval.

    Returns (mean, low, high); the interval is (nan, nan) with one seed.
    """
    level = _level(level)
    per_seed = np.asarray(values, dtype=float).mean(axis=1)
    mean = float(per_seed.mean())
    if len(per_seed) < 2:
        return mean, math.nan, math.nan
    t_quantile = optional.require("scipy.stats", extra="stats").t.ppf(0.5 + level / 2.0, len(per_seed) - 1)
    half = t_quantile * per_seed.std(ddof=1) / math.sqrt(len(per_seed))
    return mean, mean - half, mean + half


def paired_difference(correct_a, correct_b, level=0.95, resamples=4000, seed=0):
    """Accuracy of b minus accuracy of a on the same (seeds, images), with both intervals.

    Returns:
        {"mean", "low", "high" (bootstrap over seeds and images), "t_low",
        "t_high" (paired t over seeds), "per_seed" (mean difference per seed)}.
    """
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must have the same shape. Received: {a.shape} and {b.shape}")
    difference = b - a
    mean, low, high = bootstrap_interval(difference, level, resamples, seed)
    _, t_low, t_high = paired_t_interval(difference, level)
    return {
        "mean": mean,
        "low": low,
        "high": high,
        "t_low": t_low,
        "t_high": t_high,
        "per_seed": difference.mean(axis=1).tolist(),
    }


def _level(level):
    """The interval's confidence level, in (0, 1)."""
    level = arguments.number("level", level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1). Received: level={level!r}")
    return level


def verdict(difference):
    """'above', 'below' or 'level': where the bootstrap interval of a paired difference lies against 0."""
    if difference["low"] > 0:
        return "above"
    if difference["high"] < 0:
        return "below"
    return "level"
