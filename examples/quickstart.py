"""Train a small Neural SDE classifier on scikit-learn's digits (offline, ~20 s on 2 cores).

    python examples/quickstart.py --diffusion multiplicative --sigma 0.5
    KERAS_BACKEND=jax python examples/quickstart.py      # any Keras backend; no TensorFlow needed off it
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_nsde  # noqa: E402
from keras_nsde.data import digits_arrays  # noqa: E402


def build_model(diffusion, sigma, num_steps):
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same"),
            keras_nsde.SDEBlock(diffusion=diffusion, sigma=sigma, num_steps=num_steps, seed=0),
            keras.layers.GroupNormalization(16),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )


def main(argv=None):
    keras_nsde.use_pooled_cpu_allocator()  # before any tensor exists
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diffusion", default="multiplicative", choices=["none", "additive", "multiplicative", "dropout"])
    parser.add_argument("--sigma", type=float, default=None)
    parser.add_argument("--num-steps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--subset", type=int, default=None, help="train on the first N images only (smoke tests)")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = digits_arrays("train"), digits_arrays("test")
    x_train, y_train = x_train[: args.subset], y_train[: args.subset]
    model = build_model(args.diffusion, args.sigma, args.num_steps)
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    stop = keras_nsde.callbacks.StopOnNonFiniteLoss(hint="A smaller sigma or learning rate usually helps.")
    model.fit(x_train, y_train, validation_data=(x_test, y_test), epochs=args.epochs, batch_size=32, callbacks=[stop])
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"{args.diffusion} test accuracy: {accuracy:.4f} on {len(y_test)} digits")
    return accuracy


if __name__ == "__main__":
    main()
