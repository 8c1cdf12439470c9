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

The attacks are cleverhans' own, for the Keras backend in use:
`cleverhans.tf2` on TensorFlow (`attacks_tensorflow`: compiled once per
model, ensemble size, attack settings and image shape, and reused across
calls and batches), `cleverhans.torch` on PyTorch (`attacks_torch`).
cleverhans 4.0's JAX attacks import `jax.experimental.stax`, gone from JAX,
so on JAX the attacks raise a ValueError.
"""

import importlib
import weakref

import keras
import numpy as np

from keras_nsde.backend import unsupported
from keras_nsde.evaluation.ensemble import TestTimeEnsemble, ensemble_log_probabilities

NORMS = {"l2": 2, "linf": np.inf, 2: 2, np.inf: np.inf}
BACKEND_ATTACKS = {"tensorflow": "attacks_tensorflow", "torch": "attacks_torch"}


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
    implementation = _backend_attacks("projected_gradient_descent")
    norm = _check(norm, epsilon)
    if epsilon == 0:
        return np.asarray(x)
    step_size = min(epsilon, 2.5 * epsilon / steps) if step_size is None else step_size
    if not 0 < step_size <= epsilon:
        raise ValueError(f"step_size must be in (0, epsilon={epsilon!r}]. Received: step_size={step_size!r}")
    ensemble = model if isinstance(model, TestTimeEnsemble) else TestTimeEnsemble(model, samples=eot_samples)
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
    implementation = _backend_attacks("spsa")
    norm = _check(norm, epsilon)
    if epsilon == 0:
        return np.asarray(x)
    if samples < 2 or samples % 2:
        raise ValueError(f"samples must be an even int >= 2. Received: samples={samples!r}")
    ensemble = model if isinstance(model, TestTimeEnsemble) else TestTimeEnsemble(model, samples=eot_samples)
    attack = implementation.spsa(ensemble, _weakly_bound(ensemble), norm, steps, samples, learning_rate, delta, x[:1])
    return _in_batches(attack, x, y, 1, verbose, epsilon)


def attack_correct(model, x, y, epsilon, attack="pgd", eot_samples=1, ttn_samples=20, **attack_kwargs):
    """1/0 per image: whether the model (its TTN ensemble if noisy) classifies the attacked image correctly.

    Args:
        attack: "pgd" (`pgd_attack`) or "spsa" (`spsa_attack`).
        ttn_samples: noisy passes averaged to classify the attacked images.
        **attack_kwargs: further arguments of the attack (norm, steps, ...).
    """
    attacks = {"pgd": pgd_attack, "spsa": spsa_attack}
    if attack not in attacks:
        raise ValueError(f"attack must be one of {sorted(attacks)}. Received: attack={attack!r}")
    attacked = TestTimeEnsemble(model, samples=eot_samples)
    predictor = TestTimeEnsemble(model, samples=ttn_samples if attacked.noise else 1)
    x_adv = attacks[attack](attacked, x, y, epsilon, **attack_kwargs)
    return (np.argmax(predictor.predict(x_adv), axis=-1) == np.asarray(y)).astype("int8")


def pgd_accuracy(model, x, y, epsilons, norm=2, steps=40, eot_samples=1, ttn_samples=20, batch_size=128, verbose=0):
    """Accuracy on PGD images for each epsilon: {epsilon: accuracy}.

    The attacked images are classified by the model's test-time-noise
    ensemble of `ttn_samples` passes when it has noise, else by its
    deterministic output. See `pgd_attack` for `eot_samples`.
    """
    _backend_attacks("projected_gradient_descent").require()  # fail before any work without cleverhans
    return {
        float(epsilon): float(np.mean(attack_correct(
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


def _check(norm, epsilon):
    if norm not in NORMS:
        raise ValueError(f"norm must be 2, 'l2', np.inf or 'linf'. Received: norm={norm!r}")
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0. Received: epsilon={epsilon!r}")
    return NORMS[norm]


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
    """The module of cleverhans' attacks for the current Keras backend."""
    backend = keras.backend.backend()
    if backend not in BACKEND_ATTACKS:
        # cleverhans 4.0's JAX attacks import jax.experimental.stax, gone from JAX since 0.4.
        raise unsupported(f"The {attack} attack (cleverhans' TF2 and PyTorch attacks)")
    return importlib.import_module(f"keras_nsde.evaluation.{BACKEND_ATTACKS[backend]}")
