"""Test-time noise (TTN): average the softmax of several noisy passes."""

import contextlib
import weakref

import numpy as np
from keras import ops

from keras_nsde import backend
from keras_nsde.evaluation import arguments
from keras_nsde.layers.sde_block import SDEBlock


def sde_blocks(model):
    """Every SDEBlock inside `model`, nested ones included."""
    # Keras has no public recursive layer walk; _flatten_layers is the one it uses itself.
    return [layer for layer in model._flatten_layers() if isinstance(layer, SDEBlock)]


def is_noisy(model):
    """True if any SDE block of the model has a diffusion (noise to average over)."""
    return any(block.diffusion.is_noisy for block in sde_blocks(model))


@contextlib.contextmanager
def noise_at_inference(model, enabled=True):
    """Within the block, every SDEBlock of `model` keeps its noise on at inference.

    It sets `test_time_noise` on each block and restores it on exit. A
    function traced inside the block sees the noise; functions traced before
    it (such as the one `model.predict` caches) do not.
    """
    blocks = sde_blocks(model)
    if not blocks:
        raise ValueError(f"model contains no SDEBlock. Received: model={model.name!r}")
    saved = [block.test_time_noise for block in blocks]
    for block in blocks:
        block.test_time_noise = enabled
    try:
        yield blocks
    finally:
        for block, value in zip(blocks, saved):
            block.test_time_noise = value


class TestTimeEnsemble:
    """The TTN predictor p(y | x) = (1 / S) sum_s softmax(model(x; B_s)), compiled once.

    The S passes of a batch run as one pass over the batch tiled S times
    (each copy draws its own Brownian path), not as S Python-level calls.
    With a noiseless model (or S = 1 and noise off) it is the plain softmax.

    `predict` runs compiled: a `tf.function` on TensorFlow, `jax.jit` on JAX
    with the model's variables (its seed generators' states included) passed
    in and written back, so that consecutive calls draw fresh noise as they
    do eagerly; eagerly on PyTorch.

    Args:
        model: a Keras model with SDE blocks, returning logits (or
            probabilities with `from_logits=False`).
        samples: S >= 1.
        noise: keep the SDE noise on (default: if the model has any).
        from_logits: apply a softmax to the model's outputs.
        jit_compile: compile `predict`'s passes with XLA on TensorFlow. JAX
            always compiles with XLA; on PyTorch the passes run eagerly
            either way (accepted, changes nothing).
    """

    __test__ = False  # not a pytest class

    def __init__(self, model, samples=100, noise=None, from_logits=True, jit_compile=False):
        self.samples = arguments.integer("samples", samples)
        self.noise = is_noisy(model) if noise is None else arguments.boolean("noise", noise)
        self.from_logits = arguments.boolean("from_logits", from_logits)
        self.jit_compile = arguments.boolean("jit_compile", jit_compile)
        self.model = model

    def log_probabilities(self, x):
        """log p(y | x), shape (batch, classes): differentiable, usable as logits.

        A plain function, so that callers that compile (cleverhans' attack
        step, a SavedModel signature) trace it into their own graph.
        """
        return ensemble_log_probabilities(self.model, x, self.samples, self.noise, self.from_logits)

    def predict(self, x, batch_size=None):
        """Mean probabilities, NumPy `(n, classes)`; batch_size images per pass
        (a pass holds batch_size * S rows; None picks max(1, 2048 // S))."""
        batch_size = arguments.optional_integer("batch_size", batch_size) or max(1, 2048 // self.samples)
        x = arguments.batch(x)
        compiled = self.compiled_log_probabilities(x)
        return np.concatenate(
            [
                np.exp(ops.convert_to_numpy(compiled(ops.convert_to_tensor(x[i : i + batch_size]))))
                for i in range(0, len(x), batch_size)
            ]
        )

    def compiled_log_probabilities(self, x):
        """`log_probabilities` compiled once per model, ensemble settings and image shape.

        Cached on the model, so new ensembles of the same model and settings (an
        evaluation loop makes many) and new batch sizes reuse one trace.
        """
        key = (self.samples, self.noise, self.from_logits, self.jit_compile, tuple(x.shape[1:]), str(x.dtype))
        cache = _COMPILED.setdefault(self.model, {})
        if key not in cache:
            model = weakref.ref(self.model)  # the cached function must not keep its model (the cache's key) alive
            samples, noise, from_logits = self.samples, self.noise, self.from_logits
            cache[key] = backend.get().compile_function(
                lambda x: ensemble_log_probabilities(model(), x, samples, noise, from_logits),
                (None,) + tuple(x.shape[1:]),
                str(x.dtype),
                self.jit_compile,
                variables=self.model.variables,
            )
        return cache[key]


# model -> {ensemble settings: compiled log_probabilities}; entries go with their model.
_COMPILED = weakref.WeakKeyDictionary()


def ensemble_log_probabilities(model, x, samples, noise, from_logits=True):
    """log (1 / S) sum_s softmax(model(x; B_s)), shape (batch, classes): S noisy passes as one tiled pass."""
    with noise_at_inference(model, noise):
        outputs = ops.cast(model(ops.repeat(x, samples, axis=0), training=False), "float32")
    log_p = ops.log_softmax(outputs) if from_logits else ops.log(outputs)
    log_p = ops.reshape(log_p, (-1, samples, outputs.shape[-1]))
    return ops.logsumexp(log_p, axis=1) - np.log(samples).astype("float32")


def ensemble_predict(model, x, samples=100, batch_size=None, from_logits=True, jit_compile=False):
    """Mean class probabilities over `samples` noisy forward passes (see `TestTimeEnsemble`).

    Args:
        model: a Keras model with SDE blocks.
        x: inputs, NumPy `(n, ...)`.
        samples: noisy passes S >= 1 per input.
        batch_size: inputs per pass (None: max(1, 2048 // S)).
        from_logits: the model returns logits (else probabilities).
        jit_compile: XLA on TensorFlow (see `TestTimeEnsemble`).

    Returns:
        NumPy array `(n, num_classes)` of averaged probabilities.
    """
    batch_size = arguments.optional_integer("batch_size", batch_size)
    ensemble = TestTimeEnsemble(model, samples, noise=True, from_logits=from_logits, jit_compile=jit_compile)
    return ensemble.predict(x, batch_size)


def accuracy(probabilities, labels):
    """Fraction of rows whose arg-max is the label."""
    return float(np.mean(np.argmax(probabilities, axis=-1) == np.asarray(labels)))
