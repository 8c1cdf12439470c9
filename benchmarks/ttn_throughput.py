"""Test-time-noise inference: one batched pass over S tiled copies vs S Python-level passes.

    python benchmarks/ttn_throughput.py --samples 100
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_nsde  # noqa: E402
from keras_nsde import data, evaluation  # noqa: E402
from keras_nsde.models import paper_classifier  # noqa: E402


def python_loop_predict(model, x, samples):
    """The naive TTN: S separate noisy calls, softmax averaged in NumPy."""
    with evaluation.noise_at_inference(model):
        call = tf.function(lambda x: tf.nn.softmax(model(x, training=False)))
        return np.mean([call(x).numpy() for _ in range(samples)], axis=0)


def main():
    keras_nsde.use_pooled_cpu_allocator()  # before any tensor exists
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    model = paper_classifier("digits", "dropout")
    x = data.digits_arrays("test")[0][: args.images]
    rows = {}
    for name, predict in (
        ("batched (ensemble_predict)", lambda: evaluation.ensemble_predict(model, x, args.samples)),
        ("Python loop of passes", lambda: python_loop_predict(model, x, args.samples)),
    ):
        predict()  # trace
        start = time.perf_counter()
        predict()
        rows[name] = args.images / (time.perf_counter() - start)
    print(f"digits model, {args.images} images x {args.samples} noisy samples")
    for name, rate in rows.items():
        print(f"{name:28s} {rate:8.1f} images/s")


if __name__ == "__main__":
    main()
