"""Compiles the C++ kernels into one cached shared library, safely.

    library = build_library()    # $KERAS_NSDE_CACHE/keras_nsde_kernels-<key>.so

The cache key covers everything that changes the binary: the sources, the
TensorFlow version, the compiler's path and `--version` banner, and the full
flag list (host-detected `-mavx2 -mfma` and `-mavx512f` included, so a cache shared between
machines never hands one CPU a library built for another). The compiler's
output, warnings included, is kept beside the library in `<name>.log`.

A build compiles to a private temporary file, loads it once in a separate
Python process (a library that crashes on load costs that process, not the
caller's), and only then renames it into place. Processes that build into
one empty cache at once therefore each finish with a complete library.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

SOURCES = sorted(pathlib.Path(__file__).parent.glob("*.cc"))
HEADERS = sorted(pathlib.Path(__file__).parent.glob("*.h"))
BUILD_TIMEOUT_SECONDS = 600

_CHECK_LOADS = "import sys, tensorflow as tf; tf.load_op_library(sys.argv[1])"


class KernelBuildError(RuntimeError):
    """The kernels could not be built or loaded; the message says why."""


def cache_dir():
    return pathlib.Path(os.environ.get("KERAS_NSDE_CACHE", pathlib.Path.home() / ".cache" / "keras_nsde"))


def compiler():
    """The C++ compiler's resolved path ($CXX, default g++), or raises KernelBuildError."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise KernelBuildError(f"no C++ compiler found (CXX={name!r})")
    return path


def compiler_identity(path):
    """The compiler's first `--version` line: its name and version."""
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        raise KernelBuildError(f"{path} --version failed: {error}") from error
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else ""


def compiler_flags():
    flags = ["-shared", "-fPIC", "-O3", "-Wall", "-ffp-contract=fast"]
    if _cpu_has("avx2", "fma"):
        flags += ["-mavx2", "-mfma"]
    if _cpu_has("avx512f"):
        flags += ["-mavx512f"]  # the Winograd products' 16-lane vectors
    # TensorFlow's headers as system headers: -Wall then reports our sources' warnings, not theirs.
    tensorflow_flags = [
        f"-isystem{flag[2:]}" if flag.startswith("-I") else flag for flag in tf.sysconfig.get_compile_flags()
    ]
    return flags + tensorflow_flags + tf.sysconfig.get_link_flags()


def _cpu_has(*features):
    try:
        cpu_flags = pathlib.Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return all(feature in cpu_flags for feature in features)


def cache_key(compiler_path, identity, flags, sources=SOURCES):
    digest = hashlib.sha256()
    files = [*sources, *HEADERS]
    for part in [*(file.read_bytes() for file in files), tf.__version__, compiler_path, identity, *flags]:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def build_library(sources=SOURCES):
    """The path of the compiled library, building it first if the cache lacks it.

    Raises:
        KernelBuildError: no compiler, a compiler error or crash, a timeout,
            or a library that does not load.
    """
    compiler_path = compiler()
    flags = compiler_flags()
    key = cache_key(compiler_path, compiler_identity(compiler_path), flags, sources)
    cache = cache_dir()
    library = cache / f"keras_nsde_kernels-{key}.so"
    if library.exists():
        return library
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, prefix=f".{library.stem}-", suffix=".so", delete=False) as partial:
        partial_path = pathlib.Path(partial.name)
    try:
        command = [compiler_path, *map(str, sources), "-o", str(partial_path), *flags]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as error:
            raise KernelBuildError(f"{compiler_path} ran longer than {BUILD_TIMEOUT_SECONDS} s") from error
        log = library.with_suffix(".log")
        _write_atomically(log, " ".join(command) + "\n\n" + result.stdout + result.stderr)
        if result.returncode != 0:
            how = f"was killed by signal {-result.returncode}" if result.returncode < 0 else "failed"
            raise KernelBuildError(f"{compiler_path} {how} (log: {log}): {result.stderr.strip()[-1500:]}")
        _check_loads(partial_path)
        os.replace(partial_path, library)
    finally:
        partial_path.unlink(missing_ok=True)
    return library


def _check_loads(path):
    """Loads the library in a child process: a crash there is reported, not suffered."""
    result = subprocess.run(
        [sys.executable, "-c", _CHECK_LOADS, str(path)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if result.returncode != 0:
        how = f"crashed (signal {-result.returncode})" if result.returncode < 0 else "failed"
        raise KernelBuildError(f"loading the built library {how}: {result.stderr.strip()[-1500:]}")


def _write_atomically(path, text):
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}-", delete=False) as partial:
        partial.write(text)
    os.replace(partial.name, path)
