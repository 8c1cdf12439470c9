"""examples/quickstart.py and examples/reproduce_digits.py on JAX and PyTorch in an interpreter without TensorFlow.

Each runs in a fresh interpreter whose imports of tensorflow (and of the
packages built on it) fail, as in a venv without TensorFlow, with a tiny
configuration. Under KERAS_BACKEND=tensorflow there is nothing to run.
"""

import json
import os
import subprocess
import sys

import keras
import pytest

pytestmark = [
    pytest.mark.all_backends,
    pytest.mark.slow,
    pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="the TensorFlow backend needs TensorFlow"),
]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TENSORFLOW_PACKAGES = ["tensorflow", "tensorflow_datasets", "tensorflow_probability", "tf_keras"]

# Runs argv[2] as __main__ with the arguments after it, in an interpreter where TensorFlow is not found: every
# import finder answers "no such module" for it, as in a venv without it (importlib.util.find_spec gives None).
RUN_WITHOUT_TENSORFLOW = """
import json, runpy, sys

class WithoutTensorFlow:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

BLOCKED = set(json.loads(sys.argv[1]))
sys.meta_path[:] = [WithoutTensorFlow(finder) for finder in sys.meta_path]
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
assert not BLOCKED & set(sys.modules), sorted(BLOCKED & set(sys.modules))
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def run_example(script, *args):
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TENSORFLOW, json.dumps(TENSORFLOW_PACKAGES), script, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "tensorflow imported: False"
    return lines


def test_quickstart_runs_without_tensorflow():
    lines = run_example("examples/quickstart.py", "--epochs", "1", "--subset", "256", "--num-steps", "2")
    [report] = [line for line in lines if "test accuracy:" in line]
    accuracy = float(report.split("test accuracy:")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0


def test_reproduce_digits_runs_without_tensorflow(tmp_path):
    tiny = [
        "--out", str(tmp_path), "--epochs", "1", "--seeds", "1", "--subset", "64", "--num-steps", "2",
        "--ttn-samples", "2", "--pgd-eps", "0.5", "--table-eps", "0.5", "--pgd-steps", "2", "--pgd-examples", "4",
        "--eot-samples", "2", "--spsa-eps", "0.5", "--spsa-examples", "2", "--spsa-steps", "2", "--spsa-samples", "4",
        "--verbose", "0",
    ]
    run_example("examples/reproduce_digits.py", *tiny)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["models"]) == {"ODE", "additive", "multiplicative", "dropout"}
    for row in summary["models"].values():
        assert 0.0 <= row["pgd"]["0.5"]["mean"] <= 1.0 and 0.0 <= row["spsa"]["0.5"]["mean"] <= 1.0
    for name in ("table.md", "correct.npz", "figure1_toy.png", "figure3_attacks.png", "figure4_perturbation.png"):
        assert (tmp_path / name).stat().st_size > 0
