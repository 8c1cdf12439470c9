"""Building the CPU kernels: cache key, build log, failures and concurrent builds."""

import os
import shutil
import stat
import subprocess
import sys

import pytest
import tensorflow as tf

from keras_nsde import kernels
from keras_nsde.backend.tensorflow.kernels import build, group_norm_ops, load_kernels

needs_compiler = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
needs_kernels = pytest.mark.skipif(load_kernels() is None, reason="compiled kernels not built here")


def fake_compiler(folder, body):
    """An executable `$CXX` whose `--version` prints 'fakecc 1.0' and whose build runs `body` (bash)."""
    script = folder / "fakecc"
    script.write_text(
        '#!/usr/bin/env bash\nif [ "$1" = "--version" ]; then echo "fakecc 1.0"; exit 0; fi\n'
        'while [ "$#" -gt 0 ]; do if [ "$1" = "-o" ]; then out="$2"; fi; shift; done\n' + body + "\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """An empty kernel cache; load_kernels forgets its result before and after."""
    monkeypatch.setenv("KERAS_NSDE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KERAS_NSDE_KERNELS", raising=False)
    load_kernels.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    load_kernels.cache_clear()


def test_kernels_build_where_a_compiler_exists():
    if shutil.which("g++") is None or not kernels.kernels_enabled():
        pytest.skip("no C++ compiler, or kernels turned off")
    assert load_kernels() is not None


def test_cache_key_covers_tensorflow_compiler_and_every_flag():
    flags = ["-O3", "-mavx2"]
    key = build.cache_key("/usr/bin/g++", "g++ 12.2.0", flags)
    assert tf.__version__  # part of the key: a TensorFlow upgrade rebuilds
    assert build.cache_key("/usr/bin/g++", "g++ 13.1.0", flags) != key
    assert build.cache_key("/usr/bin/clang++", "g++ 12.2.0", flags) != key
    assert build.cache_key("/usr/bin/g++", "g++ 12.2.0", ["-O3"]) != key
    assert build.cache_key("/usr/bin/g++", "g++ 12.2.0", ["-O3", "-mavx2"]) == key


def test_compiler_flags_keep_warnings_on():
    flags = build.compiler_flags()
    assert "-w" not in flags and "-Wall" in flags
    assert not any(flag.startswith("-I") for flag in flags)  # TensorFlow's headers come in as -isystem


@needs_compiler
def test_build_log_keeps_the_compiler_warnings(fresh_build):
    source = fresh_build / "warns.cc"
    source.write_text("int knsde_probe() { int unused = 1; return 0; }\n")
    library = build.build_library(sources=[source])
    log = library.with_suffix(".log").read_text()
    assert "unused" in log and "warning" in log


def test_a_failed_build_warns_once_and_falls_back(fresh_build, monkeypatch):
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    with pytest.warns(UserWarning, match="could not build its CPU kernels") as warned:
        assert load_kernels() is None
        assert load_kernels() is None
    assert len(warned) == 1
    assert not group_norm_ops.can_fuse(tf.zeros((1, 2, 2, 2)))


def test_a_crashing_compiler_warns_and_falls_back(fresh_build, monkeypatch):
    monkeypatch.setenv("CXX", str(fake_compiler(fresh_build, "kill -SEGV $$")))
    with pytest.warns(UserWarning, match="killed by signal 11"):
        assert load_kernels() is None
    assert not list((fresh_build / "cache").glob("*.so"))  # nothing half-built left behind


def test_a_library_that_does_not_load_warns_and_falls_back(fresh_build, monkeypatch):
    monkeypatch.setenv("CXX", str(fake_compiler(fresh_build, 'echo "not a library" > "$out"')))
    with pytest.warns(UserWarning, match="loading the built library failed"):
        assert load_kernels() is None
    assert not list((fresh_build / "cache").glob("*.so"))


BUILD_AND_LOAD = "from keras_nsde.backend.tensorflow.kernels import load_kernels; assert load_kernels() is not None; print('loaded')"


@needs_kernels
def test_two_processes_building_into_one_empty_cache_both_succeed(tmp_path):
    """A slow fake compiler (it copies the real library after a pause) makes the two builds overlap."""
    real_library = build.build_library()  # this process's cached library
    compiler = fake_compiler(tmp_path, f'sleep 3; cp "{real_library}" "$out"')
    shared = tmp_path / "shared"
    env = {**os.environ, "KERAS_NSDE_CACHE": str(shared), "CXX": str(compiler), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_NSDE_KERNELS", None)
    processes = [
        subprocess.Popen([sys.executable, "-c", BUILD_AND_LOAD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-2000:]
        assert "loaded" in stdout and "could not build" not in stderr
    assert len(list(shared.glob("*.so"))) == 1
    assert not list(shared.glob(".*"))  # no temporary files left
