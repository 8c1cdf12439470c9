"""keras.distribution.DataParallel on 2 host devices (JAX), in a child process that sets XLA_FLAGS."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.all_backends
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def report():
    if keras.backend.backend() != "jax":
        pytest.skip("the JAX run tests keras.distribution")
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONPATH": ROOT,
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    finished = subprocess.run(
        [sys.executable, "tests/jax_data_parallel_check.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_two_devices_hold_the_model(report):
    assert report["devices"] == 2
    assert report["one_weight_devices"] == 1 and report["two_weight_devices"] == 2


@pytest.mark.parametrize("diffusion", ["none", "multiplicative"])
def test_data_parallel_losses_equal_one_devices(report, diffusion):
    """The ODE exactly; with noise too, since the two devices draw disjoint parts of one batch's paths."""
    one, two = report[f"one_{diffusion}"], report[f"two_{diffusion}"]
    assert len(one) == 4 and np.all(np.isfinite(two))
    np.testing.assert_allclose(two, one, rtol=1e-4)


def test_each_device_draws_its_own_paths(report):
    """One image repeated 8 times, noise on: the 4 rows on each device differ from each other and across devices."""
    outputs = np.array(report["two_outputs"])
    first_device, second_device = outputs[:4], outputs[4:]
    assert np.abs(first_device - second_device).min() > 1e-6
    assert np.abs(np.diff(first_device, axis=0)).min() > 1e-6
    np.testing.assert_allclose(outputs, np.array(report["one_outputs"]), rtol=1e-4, atol=1e-6)
