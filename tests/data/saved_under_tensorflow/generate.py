"""Writes the `.keras` files and reference outputs that tests/test_backends.py loads on every backend.

    KERAS_BACKEND=tensorflow python tests/data/saved_under_tensorflow/generate.py
"""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_nsde  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def models():
    keras.utils.set_random_seed(0)
    yield "multiplicative_default_drift", keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras_nsde.SDEBlock(diffusion="multiplicative", num_steps=3, name="block"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )
    yield "additive_trajectory", keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras.layers.Flatten(),
            keras.layers.Dense(6),
            keras_nsde.SDEBlock(
                diffusion="additive", num_steps=4, return_trajectory=True, solver="milstein", name="block"
            ),
        ]
    )
    yield "paper_classifier_digits", keras_nsde.models.paper_classifier(
        "digits", diffusion="dropout", filters=8, num_steps=2
    )
    yield "dopri5_ode", keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras.layers.Flatten(),
            keras.layers.Dense(6),
            keras_nsde.SDEBlock(solver=keras_nsde.solvers.Dopri5(rtol=1e-6, atol=1e-8), name="block"),
            keras.layers.Dense(3),
        ]
    )


def main():
    outputs = {"x": np.random.default_rng(0).normal(size=(4, 8, 8, 4)).astype("float32")}
    for name, model in models():
        x = outputs["x"] if model.input_shape[-1] == 4 else outputs["x"][..., :1]
        for weight in model.trainable_weights:  # non-trivial weights: GroupNorm's gamma and beta start at 1 and 0
            weight.assign(weight + np.random.default_rng(len(outputs)).normal(0, 0.1, weight.shape).astype(weight.dtype))
        model.save(os.path.join(HERE, f"{name}.keras"))
        outputs[name] = keras.ops.convert_to_numpy(model(x, training=False))
    np.savez(os.path.join(HERE, "outputs.npz"), **outputs)


if __name__ == "__main__":
    main()
