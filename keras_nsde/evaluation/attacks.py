"""Adversarial robustness: cleverhans' PGD (gradient-based, with EOT) and SPSA (gradient-free).

Both attack the model's test-time-noise ensemble (`TestTimeEnsemble`): with
`eot_samples = k` the attacked loss is that of the k-sample average
p(y | x) = (1/k) sum_s softmax(model(x; B_s)), fresh noise at every step
(expectation over transformation, Athalye et al. 2018; k = 1 is the authors'
one-sample attack, which overstates the robustness of a stochastic model).

SPSA (Uesato et al. 2018) estimates the gradient from loss differences at
random perturbations instead of backpropagating, so it is blind to gradients
that are masked or obfuscated; an SPSA accuracy well below the PGD+EOT
accuracy on the same images is the standard sign that the gradients, not the
model, were the obstacle.

The attacks are cleverhans' own where it runs on the Keras backend in use:
`cleverhans.tf2` on TensorFlow (`attacks_tensorflow`: compiled once per
model, ensemble size, attack settings and image shape, and reused across
calls and batches), `cleverhans.torch` on PyTorch (`attacks_torch`).
cleverhans 4.0's JAX attacks import `jax.experimental.stax`, gone from JAX,
so on JAX the same algorithms run from `attacks_keras`, written once in
keras.ops over the backend's input-gradient hook and compiled with
`jax.jit` (tested to give cleverhans' PGD perturbation on TensorFlow).

Arguments are checked before anything runs: a bad one is a ValueError
naming it and the value received.
"""

import importlib
from typing import NamedTuple
import weakref

import keras
import numpy as np

from keras_nsde.backend import unsupported
from keras_nsde.evaluation import arguments
from keras_nsde.evaluation.ensemble import TestTimeEnsemble, ensemble_log_probabilities



class SPSASettings(NamedTuple):
    """SPSA's settings, as each backend's implementation takes them (see `spsa_attack`)."""

    norm: float
    steps: int
    samples: int
    learning_rate: float
    delta: float

NORMS = {"l2": 2, "linf": np.inf, 2: 2, np.inf: np.inf}
BACKEND_ATTACKS = {"tensorflow": "attacks_tensorflow", "torch": "attacks_torch", "jax": "attacks_keras"}
ATTACKS = ("pgd", "spsa")


def pgd_attack(model, x, y, epsilon, norm=2, steps=40, step_size=None, eot_samples=1, batch_size=128, verbose=0):
    """PGD adversarial images within the `norm`-ball of radius epsilon, clipped to [0, 1].

    Args:
        model: a Keras model returning logits, or a `TestTimeEnsemble` to attack.
        x: images in [0, 1] (NumPy, `(batch, H, W, C)`).
        y: integer labels (NumPy, `(batch,)`).
        epsilon: ball radius; 0 returns x unchanged.
        norm: 2 / "l2" or np.inf / "linf".
        steps: PGD iterations (the authors: 40).
        step_size: per-step size in (0, epsilon]; default min(epsilon, 2.5 * epsilon / steps) (Madry et al.).
        eot_samples: noise samples averaged per gradient (ignored for an ensemble).
        batch_size: images attacked at once.
        verbose: 1 shows a progress bar over the batches.
    """
    norm, epsilon = _norm(norm), arguments.number("epsilon", epsilon)
    steps = arguments.integer("steps", steps)
    eot_samples = arguments.integer("eot_samples", eot_samples)
    batch_size = arguments.integer("batch_size", batch_size)
    verbose = _verbosity(verbose)
    ensemble = _ensemble(model, eot_samples)
    x, y = arguments.batch(x, y)
    if step_size is None:
        step_size = min(epsilon, 2.5 * epsilon / steps)
    else:
        step_size = arguments.number("step_size", step_size)
        if not 0 < step_size <= epsilon:
            raise ValueError(f"step_size must be in (0, epsilon={epsilon!r}]. Received: step_size={step_size!r}")
    implementation = _backend_attacks("projected_gradient_descent")
    if epsilon == 0:
        return x
    attack = implementation.pgd(ensemble, _weakly_bound(ensemble), norm, steps, x)
    return _in_batches(attack, x, y, batch_size, verbose, epsilon, step_size)


def spsa_attack(model, x, y, epsilon, norm=2, steps=20, samples=64, learning_rate=0.01, delta=0.01, eot_samples=1,
                verbose=0):
    """Gradient-free SPSA adversarial images within the `norm`-ball of radius epsilon, clipped to [0, 1].

    cleverhans' SPSA (its SPSA-Adam gradient estimate and projected
    optimisation, margin loss on the ensemble's log probabilities) one image
    at a time, on the L2 ball (norm 2) or the L-inf ball, intersected with the
    unit box.

    Args:
        model: a Keras model returning logits, or a `TestTimeEnsemble` to attack.
        x: images in [0, 1] (NumPy, `(batch, H, W, C)`).
        y: integer labels (NumPy, `(batch,)`).
        epsilon: ball radius; 0 returns x unchanged.
        norm: 2 / "l2" or np.inf / "linf".
        steps: optimisation steps; each evaluates the model on `samples`
            perturbed copies of the image (times `eot_samples` noise draws).
        samples: even; the SPSA batch per step.
        learning_rate: SPSA-Adam's step size.
        delta: SPSA-Adam's finite-difference size.
        eot_samples: noise samples averaged per loss evaluation (ignored for an ensemble).
        verbose: 1 shows a progress bar over the images.
    """
    norm, epsilon = _norm(norm), arguments.number("epsilon", epsilon)
    steps = arguments.integer("steps", steps)
    samples = arguments.integer("samples", samples, minimum=2)
    if samples % 2:
        raise ValueError(f"samples must be an even int >= 2. Received: samples={samples!r}")
    learning_rate = arguments.number("learning_rate", learning_rate, inclusive=False)
    delta = arguments.number("delta", delta, inclusive=False)
    eot_samples = arguments.integer("eot_samples", eot_samples)
    verbose = _verbosity(verbose)
    ensemble = _ensemble(model, eot_samples)
    x, y = arguments.batch(x, y)
    implementation = _backend_attacks("spsa")
    if epsilon == 0:
        return x
    settings = SPSASettings(norm, steps, samples, learning_rate, delta)
    attack = implementation.spsa(ensemble, _weakly_bound(ensemble), settings, x[:1])
    return _in_batches(attack, x, y, 1, verbose, epsilon)


def attack_correct(model, x, y, epsilon, attack="pgd", eot_samples=1, ttn_samples=20, **attack_kwargs):
    """1/0 per image: whether the model (its TTN ensemble if noisy) classifies the attacked image correctly.

    Args:
        attack: "pgd" (`pgd_attack`) or "spsa" (`spsa_attack`).
        ttn_samples: noisy passes averaged to classify the attacked images.
        **attack_kwargs: further arguments of the attack (norm, steps, ...).
    """
    if not isinstance(attack, str) or attack not in ATTACKS:
        raise ValueError(f"attack must be one of {list(ATTACKS)}. Received: attack={attack!r}")
    eot_samples = arguments.integer("eot_samples", eot_samples)
    ttn_samples = arguments.integer("ttn_samples", ttn_samples)
    x, y = arguments.batch(x, y)
    attacked = TestTimeEnsemble(_model(model), samples=eot_samples)
    predictor = TestTimeEnsemble(model, samples=ttn_samples if attacked.noise else 1)
    x_adv = {"pgd": pgd_attack, "spsa": spsa_attack}[attack](attacked, x, y, epsilon, **attack_kwargs)
    return (np.argmax(predictor.predict(x_adv), axis=-1) == y).astype("int8")


def pgd_accuracy(model, x, y, epsilons, norm=2, steps=40, eot_samples=1, ttn_samples=20, batch_size=128, verbose=0):
    """Accuracy on PGD images for each epsilon: {epsilon: accuracy}.

    The attacked images are classified by the model's test-time-noise
    ensemble of `ttn_samples` passes when it has noise, else by its
    deterministic output. See `pgd_attack` for `eot_samples`.
    """
    epsilons = _epsilons(epsilons)
    norm, steps = _norm(norm), arguments.integer("steps", steps)
    eot_samples = arguments.integer("eot_samples", eot_samples)
    ttn_samples = arguments.integer("ttn_samples", ttn_samples)
    batch_size = arguments.integer("batch_size", batch_size)
    verbose = _verbosity(verbose)
    _model(model)
    x, y = arguments.batch(x, y)
    _backend_attacks("projected_gradient_descent").require()  # fail before any work without cleverhans
    return {
        epsilon: float(np.mean(attack_correct(
            model, x, y, epsilon, "pgd", eot_samples, ttn_samples, norm=norm, steps=steps, batch_size=batch_size,
            verbose=verbose,
        )))
        for epsilon in epsilons
    }


def _weakly_bound(ensemble):
    """The ensemble's log_probabilities without a strong reference to its model (the caches' key)."""
    model = weakref.ref(ensemble.model)
    samples, noise, from_logits = ensemble.samples, ensemble.noise, ensemble.from_logits
    return lambda x: ensemble_log_probabilities(model(), x, samples, noise, from_logits)


def _norm(norm):
    try:
        return NORMS[norm]
    except (KeyError, TypeError):
        raise ValueError(f"norm must be 2, 'l2', np.inf or 'linf'. Received: norm={norm!r}") from None


def _epsilons(epsilons):
    """The attack radii as floats: a non-empty list of finite numbers >= 0."""
    message = f"epsilons must be a non-empty list of finite numbers >= 0. Received: epsilons={epsilons!r}"
    if isinstance(epsilons, (str, bytes)) or not isinstance(epsilons, (list, tuple, np.ndarray)) or not len(epsilons):
        raise ValueError(message)
    try:
        return [arguments.number("epsilon", epsilon) for epsilon in epsilons]
    except ValueError:
        raise ValueError(message) from None


def _verbosity(verbose):
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    return arguments.integer("verbose", verbose, minimum=0)


def _ensemble(model, eot_samples):
    """The TestTimeEnsemble to attack: `model` itself, or the model's ensemble of eot_samples passes."""
    if isinstance(model, TestTimeEnsemble):
        return model
    return TestTimeEnsemble(_model(model), samples=eot_samples)


def _model(model):
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(f"model must be a Keras model. Received: model={model!r}")
    return model


def _in_batches(attack, x, y, batch_size, verbose, *scalars):
    """attack(x_batch, y_batch, *scalars) over the batches, with a progress bar over the images."""
    x, y = np.asarray(x, "float32"), np.asarray(y)
    progress = keras.utils.Progbar(len(x), verbose=verbose, unit_name="image")
    batches = []
    for i in range(0, len(x), batch_size):
        batches.append(attack(x[i : i + batch_size], y[i : i + batch_size], *scalars))
        progress.add(len(batches[-1]))
    return np.concatenate(batches)


def _backend_attacks(attack):
    """The module of the attacks for the current Keras backend (cleverhans', or keras.ops on JAX)."""
    backend = keras.backend.backend()
    if backend not in BACKEND_ATTACKS:
        raise unsupported(f"The {attack} attack")
    return importlib.import_module(f"keras_nsde.evaluation.{BACKEND_ATTACKS[backend]}")
