"""Fused CPU kernels, compiled on first use with the system C++ compiler.

`group_norm_kernels.cc` holds one-pass kernels for GroupNorm(+ReLU) on
float32 images (see `group_norm_ops` for what each computes). TensorFlow
runs GroupNorm as a chain of elementwise kernels, each reading and writing
the whole state; these do the same work in one pass over it.

The library is built against the installed TensorFlow (its headers and
`tf.sysconfig` flags) into a cache folder, once per source, TensorFlow
version and compiler flags:

    $KERAS_NSDE_CACHE (default ~/.cache/keras_nsde)/group_norm_kernels-<hash>.so

Where it cannot be built (no C++ compiler, no TensorFlow headers) keras_nsde
warns once and runs the same computation as TensorFlow ops: same numbers up
to float rounding, slower. `KERAS_NSDE_KERNELS=0` turns the kernels off.
"""

import functools
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import warnings

import tensorflow as tf

SOURCE = pathlib.Path(__file__).with_name("group_norm_kernels.cc")


def kernels_enabled():
    return os.environ.get("KERAS_NSDE_KERNELS", "1") != "0"


@functools.lru_cache(maxsize=None)
def load_kernels():
    """The compiled op library, or None where it is turned off or cannot be built."""
    if not kernels_enabled() or not sys.platform.startswith("linux"):
        return None
    try:
        return tf.load_op_library(str(_build()))
    except (OSError, subprocess.SubprocessError, tf.errors.OpError) as error:
        warnings.warn(
            f"keras_nsde: could not build its fused CPU kernels ({error}); GroupNorm runs as "
            "TensorFlow ops instead (same results, slower). Set KERAS_NSDE_KERNELS=0 to silence this.",
            stacklevel=2,
        )
        return None


def _compiler_flags():
    flags = ["-shared", "-fPIC", "-O3", "-w"]
    if _cpu_has("avx2", "fma"):
        flags += ["-mavx2", "-mfma"]
    return flags + tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()


def _cpu_has(*features):
    try:
        cpu_flags = pathlib.Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return all(feature in cpu_flags for feature in features)


def _build():
    flags = _compiler_flags()
    key = hashlib.sha256(SOURCE.read_bytes() + tf.__version__.encode() + " ".join(flags).encode()).hexdigest()
    cache = pathlib.Path(os.environ.get("KERAS_NSDE_CACHE", pathlib.Path.home() / ".cache" / "keras_nsde"))
    library = cache / f"group_norm_kernels-{key[:16]}.so"
    if library.exists():
        return library
    cache.mkdir(parents=True, exist_ok=True)
    # Build to a temporary name, then rename: concurrent builds (test workers) never see half a file.
    with tempfile.NamedTemporaryFile(dir=cache, suffix=".so", delete=False) as partial:
        partial_path = pathlib.Path(partial.name)
    try:
        compiler = os.environ.get("CXX", "g++")
        result = subprocess.run(
            [compiler, str(SOURCE), "-o", str(partial_path), *flags], capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise OSError(f"{compiler} failed: {result.stderr.strip()[-2000:]}")
        os.replace(partial_path, library)
    finally:
        partial_path.unlink(missing_ok=True)
    return library
