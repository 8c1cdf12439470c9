"""Adversarial robustness with cleverhans' projected gradient descent (PGD)."""

import numpy as np
import tensorflow as tf

from keras_nsde import optional
from keras_nsde.evaluation.ensemble import TestTimeEnsemble, accuracy

NORMS = {"l2": 2, "linf": np.inf, 2: 2, np.inf: np.inf}


def pgd_attack(model, x, y, epsilon, norm=2, steps=40, step_size=None, eot_samples=1, batch_size=128):
    """PGD adversarial images within the `norm`-ball of radius epsilon, clipped to [0, 1].

    Attacking a stochastic model with one noise sample per gradient (eot_samples=1,
    the authors' setting) follows a random gradient and overstates robustness.
    With eot_samples = k > 1 (expectation over transformation, Athalye et al.
    2018) each step differentiates the loss of the k-sample ensemble,
    -log (1/k) sum_s softmax(model(x; B_s))_y, with fresh noise every step.

    Args:
        model: a Keras model returning logits, or a `TestTimeEnsemble` to attack.
        x, y: images in [0, 1] and integer labels (NumPy).
        epsilon: ball radius; 0 returns x unchanged.
        norm: 2 / "l2" or np.inf / "linf".
        steps: PGD iterations (the authors: 40).
        step_size: per-step size; default min(epsilon, 2.5 * epsilon / steps) (Madry et al.).
        eot_samples: noise samples averaged per gradient (ignored for an ensemble).
        batch_size: images attacked at once.
    """
    pgd = _cleverhans_pgd()
    if norm not in NORMS:
        raise ValueError(f"norm must be 2, 'l2', np.inf or 'linf'. Received: norm={norm!r}")
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0. Received: epsilon={epsilon!r}")
    if epsilon == 0:
        return np.asarray(x)
    attacked = model if isinstance(model, TestTimeEnsemble) else TestTimeEnsemble(model, samples=eot_samples)
    step_size = min(epsilon, 2.5 * epsilon / steps) if step_size is None else step_size
    batches = []
    for i in range(0, len(x), batch_size):
        batches.append(
            pgd.projected_gradient_descent(
                attacked.log_probabilities,
                tf.constant(x[i : i + batch_size]),
                eps=epsilon,
                eps_iter=step_size,
                nb_iter=steps,
                norm=NORMS[norm],
                clip_min=0.0,
                clip_max=1.0,
                y=tf.constant(y[i : i + batch_size]),
                rand_init=False,
                sanity_checks=False,
            ).numpy()
        )
    return np.concatenate(batches)


def pgd_accuracy(model, x, y, epsilons, norm=2, steps=40, eot_samples=1, ttn_samples=20, batch_size=128):
    """Accuracy on PGD images for each epsilon: {epsilon: accuracy}.

    The attacked images are classified by the model's test-time-noise
    ensemble of `ttn_samples` passes when it has noise, else by its
    deterministic output. See `pgd_attack` for `eot_samples`.
    """
    _cleverhans_pgd()  # fail before any work when cleverhans is missing
    attacked = TestTimeEnsemble(model, samples=eot_samples)
    predictor = TestTimeEnsemble(model, samples=ttn_samples if attacked.noise else 1)
    return {
        float(epsilon): accuracy(
            predictor.predict(pgd_attack(attacked, x, y, epsilon, norm, steps, batch_size=batch_size)), y
        )
        for epsilon in epsilons
    }


def _cleverhans_pgd():
    return optional.require("cleverhans.tf2.attacks.projected_gradient_descent", extra="attacks")
