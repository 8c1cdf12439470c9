"""One training step of the paper's CIFAR-10 model on the Keras backend KERAS_BACKEND names.

    KERAS_BACKEND=jax python benchmarks/backend_step_time.py --repeats 5

Run by benchmarks/step_time.py for its JAX and PyTorch rows (a process holds
one Keras backend). Prints one JSON line: the backend, the seconds of each
step after two warm-up steps (the first compiles), and the warm-up times.
"""

import argparse
import json
import time

import keras
import numpy as np

from keras_nsde.models import paper_classifier

SIGMA = 1.5


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gradient", default="autodiff")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, args.batch)
    model = paper_classifier("cifar10", "multiplicative", sigma=SIGMA, gradient=args.gradient)
    model.compile(
        keras.optimizers.SGD(0.1, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile="auto",  # JAX: jax.jit (XLA); PyTorch: eager; TensorFlow: tf.function
    )
    times = []
    for _ in range(args.repeats + 2):
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        float(loss)  # wait for asynchronous dispatch
        times.append(time.perf_counter() - start)
    print(json.dumps({"backend": keras.backend.backend(), "warmup": times[:2], "steps": times[2:]}))


if __name__ == "__main__":
    main()
