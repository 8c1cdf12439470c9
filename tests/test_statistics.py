"""Paired statistics of the robustness evaluation."""

import numpy as np
import pytest

from keras_nsde.evaluation import statistics

pytestmark = pytest.mark.all_backends


def test_bootstrap_interval_covers_the_true_accuracy_and_is_not_too_wide():
    """Resampling seeds and images is conservative when seeds do not matter (here), never liberal."""
    rng = np.random.default_rng(0)
    covered, widths = 0, []
    for trial in range(200):
        correct = (rng.uniform(size=(3, 100)) < 0.6).astype(float)
        _, low, high = statistics.bootstrap_interval(correct, resamples=400, seed=trial)
        covered += low <= 0.6 <= high
        widths.append(high - low)
    binomial_width = 2 * 1.96 * np.sqrt(0.6 * 0.4 / 300)
    assert covered / 200 >= 0.93
    assert np.mean(widths) < 1.6 * binomial_width


def test_paired_difference_of_identical_models_is_level():
    correct = (np.random.default_rng(1).uniform(size=(2, 80)) < 0.5).astype(int)
    difference = statistics.paired_difference(correct, correct)
    assert difference["mean"] == 0 and difference["low"] == 0 and difference["high"] == 0
    assert statistics.verdict(difference) == "level"


def test_paired_difference_detects_a_clear_gain_and_lists_each_seed():
    a = np.zeros((2, 50))
    b = np.zeros((2, 50))
    b[0, :20], b[1, :30] = 1, 1
    difference = statistics.paired_difference(a, b)
    assert difference["mean"] == pytest.approx(0.5)
    assert difference["per_seed"] == pytest.approx([0.4, 0.6])
    assert statistics.verdict(difference) == "above" and difference["low"] > 0.3


def test_paired_t_interval_matches_the_textbook_formula():
    values = np.array([[0.1, 0.3], [0.4, 0.6], [0.2, 0.2]])  # per-seed means 0.2, 0.5, 0.2
    mean, low, high = statistics.paired_t_interval(values)
    per_seed = np.array([0.2, 0.5, 0.2])
    half = 4.302652729911275 * per_seed.std(ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    assert mean == pytest.approx(0.3) and (low, high) == pytest.approx((0.3 - half, 0.3 + half))


def test_value_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 4\)"):
        statistics.paired_difference(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="shape"):
        statistics.bootstrap_interval(np.zeros(5))
