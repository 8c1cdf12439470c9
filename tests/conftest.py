import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts with fresh layer names and the float32 policy."""
    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def float64_on_jax():
    """JAX computes float64 as float32 unless its 64-bit mode is on: on for one test (scoped, not global).

    Use with `pytest.mark.usefixtures("float64_on_jax")`; nothing on the other backends.
    """
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    with jax.enable_x64(True):
        yield


def pytest_collection_modifyitems(config, items):
    """On JAX and PyTorch only the tests marked `all_backends` run; the rest test TensorFlow-only features."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow-only (KERAS_BACKEND={backend})")
    for item in items:
        if "all_backends" not in item.keywords:
            item.add_marker(skip)
