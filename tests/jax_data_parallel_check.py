"""Run by tests/test_jax_data_parallel.py: keras.distribution.DataParallel on 2 host devices against 1 device.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax python tests/jax_data_parallel_check.py

Prints one JSON line: the devices, per-step losses on one device and on two
for the ODE and the multiplicative-noise model, and the outputs of one noisy
forward pass over a batch of identical images.
"""

import json

import jax
import keras
import numpy as np

import keras_nsde


def model(diffusion, test_time_noise=False):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras_nsde.SDEBlock(diffusion=diffusion, num_steps=3, seed=5, test_time_noise=test_time_noise),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )


def losses(diffusion, x, y):
    """Per-step losses of 4 SGD steps, and over how many devices the weights were laid out."""
    net = model(diffusion)
    net.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = [float(net.train_on_batch(x[i : i + 8], y[i : i + 8])) for i in range(0, len(x), 8)]
    return steps, len(net.trainable_variables[0].value.sharding.device_set)


def main():
    devices = jax.devices("cpu")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 4)).astype("float32")
    y = rng.integers(0, 3, size=32)
    report = {"devices": len(devices)}
    for distributed in (False, True):
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices) if distributed else None)
        key = "two" if distributed else "one"
        for diffusion in ("none", "multiplicative"):
            report[f"{key}_{diffusion}"], report[f"{key}_weight_devices"] = losses(diffusion, x, y)
        noisy = model("additive", test_time_noise=True)
        same_image = np.repeat(x[:1], 8, axis=0)
        report[f"{key}_outputs"] = noisy.predict(same_image, batch_size=8, verbose=0).tolist()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
