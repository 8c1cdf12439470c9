"""Corruption robustness (CIFAR-10-C) and perturbation growth through depth (paper Fig. 4)."""

import keras
import numpy as np
from keras import ops

from keras_nsde.evaluation import arguments
from keras_nsde.evaluation.ensemble import TestTimeEnsemble, accuracy
from keras_nsde.layers.sde_block import SDEBlock


def corruption_accuracy(model, levels=(1, 2, 3, 4, 5), corruptions=None, samples=1, data_dir=None, limit=None):
    """Accuracy on tfds `cifar10_corrupted`, averaged over corruptions per level.

    Args:
        model: a CIFAR-10 model returning logits.
        levels: severities 1-5.
        corruptions: names (default: all of tfds' 19).
        samples: test-time-noise passes (1 with the noise off = deterministic).
        data_dir: tfds data folder holding the prepared dataset.
        limit: images per corruption and level (default: all 10,000).

    Returns:
        {"by_level": {level: mean accuracy}, "by_corruption": {name: {level: accuracy}}}
    """
    from keras_nsde import data  # tfds through tf.data, imported on use: TensorFlow only when it is needed

    predictor = TestTimeEnsemble(model, samples=samples, noise=samples > 1)
    by_corruption = {}
    for name in corruptions or data.cifar10_corruptions():
        by_corruption[name] = {}
        for level in levels:
            hits, total = 0.0, 0
            for images, labels in data.load_corrupted(name, level, data_dir=data_dir, limit=limit):
                hits += accuracy(predictor.predict(images.numpy()), labels.numpy()) * len(labels)
                total += len(labels)
            by_corruption[name][level] = hits / total
    by_level = {level: float(np.mean([acc[level] for acc in by_corruption.values()])) for level in levels}
    return {"by_level": by_level, "by_corruption": by_corruption}


def perturbation_growth(model, x, x_perturbed, block_name="sde_block", noise=True, noise_seed=None, per_example=False):
    """||h_t(x_perturbed) - h_t(x)|| at every step t of one SDE block, on one Brownian path.

    Both inputs go through the layers before the block, then through the
    block's solver driven by the same increments (paper Section 3.3: the
    perturbation eps_t obeys Eq. 12 only when both states share the path).

    Returns:
        (times, norms): times `(N + 1,)` and the per-example L2 norms of the
        state difference, `(N + 1, batch)` with `per_example=True`, else their
        mean over the batch, `(N + 1,)`.
    """
    block = _sde_block(model, block_name)
    noise = arguments.boolean("noise", noise)
    x, x_perturbed = np.asarray(x), np.asarray(x_perturbed)
    if x.shape != x_perturbed.shape:
        raise ValueError(
            f"x_perturbed must have x's shape {x.shape}. Received: x_perturbed with shape {x_perturbed.shape}"
        )
    stem = _stem(model, block)
    h0 = ops.convert_to_tensor(stem(x))
    h0_perturbed = ops.convert_to_tensor(stem(x_perturbed))
    path = block.brownian_path(h0, noise_seed) if noise and block.diffusion.is_noisy else None
    difference = block.trajectory(h0_perturbed, path) - block.trajectory(h0, path)
    norms = ops.convert_to_numpy(ops.norm(ops.reshape(difference, (block.num_steps + 1, h0.shape[0], -1)), axis=-1))
    times = np.linspace(block.t0, block.t1, block.num_steps + 1)
    return times, norms if per_example else norms.mean(axis=1)


def _sde_block(model, block_name):
    """The SDEBlock named `block_name` in `model`, or a ValueError naming it."""
    names = [layer.name for layer in getattr(model, "layers", [])]
    if block_name not in names or not isinstance(model.get_layer(block_name), SDEBlock):
        blocks = [layer.name for layer in getattr(model, "layers", []) if isinstance(layer, SDEBlock)]
        raise ValueError(f"block_name must name an SDEBlock of the model, one of {blocks}. Received: block_name={block_name!r}")
    return model.get_layer(block_name)


def _stem(model, block):
    """The part of the model before `block`, as a function of the model's input (inference mode)."""
    if isinstance(model, keras.Sequential):
        layers = model.layers[: model.layers.index(block)]
        return lambda x: keras.Sequential(layers)(x, training=False) if layers else x
    stem = keras.Model(model.input, block.input)
    return lambda x: stem(x, training=False)
