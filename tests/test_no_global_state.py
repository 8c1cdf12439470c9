"""keras_nsde changes nothing global, and runs with its runtime dependencies only."""

import json
import os
import subprocess
import sys

import pytest

EXTRAS_ONLY = ["cleverhans", "tensorflow_datasets", "tensorflow_probability", "tf_keras", "matplotlib", "sklearn"]

# Runs in a fresh interpreter where importing any optional dependency fails.
PROBE = """
import importlib.abc, json, os, sys

class BlockExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

BLOCKED = set(json.loads(sys.argv[1]))
sys.meta_path.insert(0, BlockExtras())

import keras, numpy as np, tensorflow as tf
environment = dict(os.environ)
options = tf.config.optimizer.get_experimental_options()

import keras_nsde
report = {"environment_after_import": dict(os.environ) == environment}

model = keras.Sequential([
    keras.Input((6, 6, 8)),
    keras_nsde.SDEBlock(diffusion="multiplicative", num_steps=2, gradient="pathwise", seed=0),
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(3),
])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
history = model.fit(rng.normal(size=(8, 6, 6, 8)).astype("float32"), rng.integers(0, 3, 8), epochs=2, verbose=0)
report["losses_finite"] = bool(np.all(np.isfinite(history.history["loss"])))
report["environment_after_fit"] = dict(os.environ) == environment
report["options_after_fit"] = tf.config.optimizer.get_experimental_options() == options
report["matplotlib_imported"] = "matplotlib" in sys.modules

def import_error(call):
    try:
        call()
    except ImportError as error:
        return str(error)
    return None

from keras_nsde import data, evaluation
report["pgd_accuracy"] = import_error(lambda: evaluation.pgd_accuracy(model, np.zeros((1, 6, 6, 8)), [0], [0.0]))
report["digits"] = import_error(lambda: data.digits_arrays("test"))
report["tfds"] = import_error(lambda: data.load("cifar10", "test"))
report["figures"] = import_error(lambda: __import__("keras_nsde.evaluation.figures", fromlist=["x"]).new_figure())
report["dopri5"] = import_error(lambda: keras_nsde.SDEBlock(solver="dopri5")(np.zeros((2, 3), "float32")))
print(json.dumps(report))
"""


def run_probe(code, *args, env=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def report():
    return run_probe(PROBE, json.dumps(EXTRAS_ONLY))


def test_import_and_training_change_no_environment_variable_or_tensorflow_option(report):
    assert report["losses_finite"]
    assert report["environment_after_import"] and report["environment_after_fit"]
    assert report["options_after_fit"]
    assert not report["matplotlib_imported"]


def test_each_missing_extra_gives_an_import_error_naming_it(report):
    for feature, extra in [("pgd_accuracy", "attacks"), ("digits", "data"), ("tfds", "data"),
                           ("figures", "plots"), ("dopri5", "dopri5")]:
        assert report[feature] is not None and f"keras_nsde[{extra}]" in report[feature], (feature, report[feature])


ALLOCATOR = """
import json, os
import keras_nsde
before = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC")
keras_nsde.use_pooled_cpu_allocator()
print(json.dumps([before, os.environ.get("TF_CPU_ALLOCATOR_USE_BFC")]))
"""


def test_pooled_allocator_is_an_explicit_opt_in():
    env = {key: value for key, value in os.environ.items() if key != "TF_CPU_ALLOCATOR_USE_BFC"}
    result = subprocess.run([sys.executable, "-c", ALLOCATOR], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [None, "true"]
