"""keras_nsde turns on TensorFlow's pooled CPU allocator unless the user chose otherwise."""

import os
import subprocess
import sys

import pytest

PROBE = "import keras_nsde, os; print(os.environ['TF_CPU_ALLOCATOR_USE_BFC'])"


def allocator_setting_after_import(preset):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPU_ALLOCATOR_USE_BFC"}
    if preset is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = preset
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]


@pytest.mark.parametrize("preset, expected", [(None, "true"), ("false", "false")])
def test_import_sets_pooled_allocator_only_by_default(preset, expected):
    assert allocator_setting_after_import(preset) == expected
