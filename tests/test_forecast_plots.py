"""examples/forecast_plots.py: split-conformal widening of sampled forecast bands."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import forecast_plots  # noqa: E402

pytestmark = pytest.mark.all_backends


def test_conformal_factor_is_the_conformal_rank_of_the_side_scaled_scores():
    # Median 0, bands [-1, 2]: a truth y above the median scores y / 2, below it -y / 1.
    truth = np.append(np.arange(-5, 14) * 0.5, np.nan).reshape(4, 5)  # 19 observed weeks, -2.5 ... 6.5
    quantiles = {0.05: -1.0, 0.25: -1.0, 0.5: 0.0, 0.75: 2.0, 0.95: 2.0}
    bands = {q: np.full(truth.shape, v) for q, v in quantiles.items()}
    # Scores: 0, 0.25, ..., 3.25 above; 0.5, 1, ..., 2.5 below.
    assert forecast_plots.conformal_factor(truth, bands, 0.05, 0.95) == 3.0  # rank ceil(20 * 0.9) = 18 of 19
    assert forecast_plots.conformal_factor(truth, bands, 0.25, 0.75) == 1.5  # rank ceil(20 * 0.5) = 10
    with pytest.raises(ValueError, match="Received: 8"):
        forecast_plots.conformal_factor(truth[:2, :4], {q: b[:2, :4] for q, b in bands.items()}, 0.05, 0.95)


def test_widened_bands_reach_the_nominal_coverage_of_a_twice_wider_truth():
    rng = np.random.default_rng(0)
    paths = rng.standard_normal((4000, 1, 1)) * np.ones((1, 30, 40))  # the model's N(0, 1) forecast
    bands = forecast_plots.quantile_bands(paths)
    calibration, test = 2.0 * rng.standard_normal((2, 30, 40))  # the truth is N(0, 2^2)
    assert forecast_plots.coverage(test, bands[0.05], bands[0.95]) < 0.7
    k = forecast_plots.conformal_factor(calibration, bands, 0.05, 0.95)
    assert k == pytest.approx(2.0, rel=0.06)
    wide = forecast_plots.widened(bands, {(0.05, 0.95): k})
    assert forecast_plots.coverage(test, wide[0.05], wide[0.95]) == pytest.approx(0.9, abs=0.03)
    np.testing.assert_array_equal(wide[0.5], bands[0.5])
    np.testing.assert_array_equal(wide[0.25], bands[0.25])  # only the named band moves
