"""The time-series examples and their benchmark, each run in its --tiny version in a fresh process."""

import json
import math
import os
import subprocess
import sys

import keras
import pytest

pytestmark = [pytest.mark.all_backends, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(*args, timeout=900):
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_BACKEND": keras.backend.backend(),
        "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    finished = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def test_lorenz_example_writes_its_figure_and_table(tmp_path):
    run_script("examples/latent_sde_lorenz.py", "--tiny", "--out", str(tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["backend"] == keras.backend.backend() and results["steps"] == 4
    assert math.isclose(results["elbo"], results["log_likelihood"] - results["path_kl"] - results["initial_kl"], rel_tol=1e-5)
    assert 0.0 <= results["coverage_50"] <= results["coverage_90"] <= 1.0
    assert (tmp_path / "lorenz.png").stat().st_size > 10_000
    assert "| ELBO |" in (tmp_path / "results.md").read_text()


def test_co2_example_writes_its_figure_and_table(tmp_path):
    pytest.importorskip("statsmodels")
    run_script("examples/co2_forecast.py", "--tiny", "--out", str(tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["results"]
    assert set(rows) == {"latent SDE, calibrated", "latent SDE, raw bands", "seasonal naive", "Holt-Winters (ETS A,A,A)"}
    assert results["held_out_weeks"] == 4 * 52 and results["calibration_windows"] == 4
    for row in rows.values():
        assert 0.0 < row["mae"] <= row["rmse"]
    calibrated, raw = rows["latent SDE, calibrated"], rows["latent SDE, raw bands"]
    assert calibrated["mae"] == raw["mae"]  # calibration moves the bands, not the median
    for level, key in (("50%", "coverage_50"), ("90%", "coverage_90")):
        widening = results["conformal_factors"][level] > 1.0  # a wider band covers at least as much, a narrower at most
        assert (calibrated[key] >= raw[key]) if widening else (calibrated[key] <= raw[key])
        assert 0.0 <= calibrated[key] <= 1.0
    assert (tmp_path / "co2.png").stat().st_size > 10_000


def test_benchmark_against_torchsde_runs_both_models(tmp_path):
    pytest.importorskip("torchsde")
    run_script("benchmarks/latent_sde_vs_torchsde.py", "--tiny", "--backends", keras.backend.backend(), "--out", str(tmp_path))
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [row["model"] for row in rows] == ["torchsde", f"keras_nsde ({keras.backend.backend()})"]
    assert all(row["steps"] == 4 and math.isfinite(row["elbo"]) for row in rows)
    assert rows[0]["initial_kl"] == 0.0  # torchsde's example starts at x(t0): no initial KL
    assert (tmp_path / f"lorenz_{keras.backend.backend()}.png").stat().st_size > 10_000
