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

Each attack is compiled once per model, ensemble size, attack settings and
image shape, and reused across calls and batches.
"""

import contextlib
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_nsde import optional
from keras_nsde.backend import unsupported
from keras_nsde.evaluation.ensemble import TestTimeEnsemble, ensemble_log_probabilities

NORMS = {"l2": 2, "linf": np.inf, 2: 2, np.inf: np.inf}


def pgd_attack(model, x, y, epsilon, norm=2, steps=40, step_size=None, eot_samples=1, batch_size=128, verbose=0):
    """PGD adversarial images within the `norm`-ball of radius epsilon, clipped to [0, 1].

    Args:
        model: a Keras model returning logits, or a `TestTimeEnsemble` to attack.
        x, y: images in [0, 1] and integer labels (NumPy).
        epsilon: ball radius; 0 returns x unchanged.
        norm: 2 / "l2" or np.inf / "linf".
        steps: PGD iterations (the authors: 40).
        step_size: per-step size; default min(epsilon, 2.5 * epsilon / steps) (Madry et al.).
        eot_samples: noise samples averaged per gradient (ignored for an ensemble).
        batch_size: images attacked at once.
        verbose: 1 shows a progress bar over the batches.
    """
    fast_gradient_method = _cleverhans("fast_gradient_method").fast_gradient_method
    clip_eta = _cleverhans_utils().clip_eta
    norm = _check(norm, epsilon)
    if epsilon == 0:
        return np.asarray(x)
    ensemble = model if isinstance(model, TestTimeEnsemble) else TestTimeEnsemble(model, samples=eot_samples)
    step_size = min(epsilon, 2.5 * epsilon / steps) if step_size is None else step_size
    log_probabilities = _weakly_bound(ensemble)

    def attack(x, y, epsilon, step_size):
        # cleverhans' projected_gradient_descent (rand_init=False): an FGM step, then the projection
        # onto the ball and the box; in a graph loop so that it compiles once for every epsilon.
        def step(i, x_adv):
            x_adv = fast_gradient_method(
                log_probabilities, x_adv, step_size, norm, clip_min=0.0, clip_max=1.0, y=y, sanity_checks=False
            )
            return i + 1, tf.clip_by_value(x + clip_eta(x_adv - x, norm, epsilon), 0.0, 1.0)

        return tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), x))[1]

    compiled = _compiled(ensemble, ("pgd", steps, norm), attack, x)
    return _in_batches(compiled, x, y, batch_size, verbose, epsilon, step_size)


def spsa_attack(model, x, y, epsilon, norm=2, steps=20, samples=64, learning_rate=0.01, delta=0.01, eot_samples=1,
                verbose=0):
    """Gradient-free SPSA adversarial images within the `norm`-ball of radius epsilon, clipped to [0, 1].

    cleverhans' SPSA (`cleverhans.tf2.attacks.spsa`: its SPSA-Adam gradient
    estimate and projected optimisation, margin loss on the ensemble's log
    probabilities) one image at a time. cleverhans projects onto the L-inf
    ball; for norm 2 the same optimisation runs with a projection onto the
    L2 ball intersected with the unit box.

    Args:
        steps: optimisation steps; each evaluates the model on `samples`
            perturbed copies of the image (times `eot_samples` noise draws).
        samples: even; the SPSA batch per step.
        learning_rate, delta: SPSA-Adam's step size and finite-difference size.
        Others as for `pgd_attack`.
    """
    spsa = _cleverhans("spsa")
    norm = _check(norm, epsilon)
    if epsilon == 0:
        return np.asarray(x)
    if samples < 2 or samples % 2:
        raise ValueError(f"samples must be an even int >= 2. Received: samples={samples!r}")
    ensemble = model if isinstance(model, TestTimeEnsemble) else TestTimeEnsemble(model, samples=eot_samples)
    log_probabilities = _weakly_bound(ensemble)
    project = spsa._project_perturbation if norm == np.inf else _l2_projection(_cleverhans_utils().clip_eta)
    optimizer = _spsa_adam(spsa, learning_rate, delta, samples)

    def attack(x, y, epsilon):
        def margin_loss(images, labels):  # minimised: minus the true class's margin over the best other class
            logits = log_probabilities(images)
            return -spsa.margin_logit_loss(logits, labels, nb_classes=logits.shape[-1])

        return spsa.projected_optimization(
            margin_loss, x, y, epsilon, steps, optimizer, clip_min=0.0, clip_max=1.0, project_perturbation=project
        )

    compiled = _compiled(ensemble, ("spsa", steps, samples, learning_rate, delta, norm), attack, x[:1])
    with _quiet_tensorflow_deprecations():  # cleverhans' loop passes back_prop=False; nothing a user can change
        return _in_batches(compiled, x, y, 1, verbose, epsilon)


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
    _cleverhans("projected_gradient_descent")  # fail before any work when cleverhans is missing
    return {
        float(epsilon): float(np.mean(attack_correct(
            model, x, y, epsilon, "pgd", eot_samples, ttn_samples, norm=norm, steps=steps, batch_size=batch_size,
            verbose=verbose,
        )))
        for epsilon in epsilons
    }


def _l2_projection(clip_eta):
    """cleverhans' SPSA projection for the L2 ball: scale into ||delta||_2 <= epsilon, then clip to the box."""

    def project(perturbation, epsilon, input_image, clip_min=None, clip_max=None):
        delta = clip_eta(perturbation, 2, epsilon)
        return tf.clip_by_value(input_image + delta, clip_min, clip_max) - input_image

    return project


def _spsa_adam(spsa, learning_rate, delta, samples):
    """cleverhans' SPSA-Adam estimator, constructed for Keras 3.

    cleverhans 4.0 builds it on `tf.optimizers.Adam(lr=...)`, Keras 2's
    signature, which Keras 3's Adam rejects; the estimator itself only reads
    lr, beta_1, beta_2 and epsilon, so it is built here with Keras 3's
    arguments and the same attributes.
    """

    class SPSAAdam(spsa.SPSAAdam):
        def __init__(self):
            keras.optimizers.Adam.__init__(self, learning_rate=learning_rate)
            self._delta = delta
            self._num_samples = samples // 2  # mirrored: +delta and -delta
            self._num_iters = 1
            self._compare_to_analytic_grad = False

        @property
        def lr(self):
            return learning_rate

    return SPSAAdam()


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


def _compiled(ensemble, key, attack, x):
    """`attack(x, y, *scalars)` compiled once per model, ensemble, attack settings and image shape."""
    cache = _COMPILED.setdefault(ensemble.model, {})
    key = (*key, ensemble.samples, ensemble.noise, ensemble.from_logits, tuple(x.shape[1:]))
    if key not in cache:
        cache[key] = tf.function(attack)
    return cache[key]


# model -> {attack settings: compiled attack}; entries go with their model.
_COMPILED = weakref.WeakKeyDictionary()


def _in_batches(compiled, x, y, batch_size, verbose, *scalars):
    """compiled(x_batch, y_batch, *scalars) over the batches, with a progress bar over the images."""
    x, y = np.asarray(x, "float32"), np.asarray(y)
    scalars = [tf.constant(scalar, tf.float32) for scalar in scalars]
    progress = keras.utils.Progbar(len(x), verbose=verbose, unit_name="image")
    batches = []
    for i in range(0, len(x), batch_size):
        batches.append(compiled(tf.constant(x[i : i + batch_size]), tf.constant(y[i : i + batch_size]), *scalars).numpy())
        progress.add(len(batches[-1]))
    return np.concatenate(batches)


def _cleverhans(attack):
    if keras.backend.backend() != "tensorflow":
        # cleverhans 4.0's JAX attacks import jax.experimental.stax, gone from JAX since 0.4.
        raise unsupported(f"The {attack} attack (cleverhans' TF2 attacks)")
    return optional.require(f"cleverhans.tf2.attacks.{attack}", extra="attacks")


def _cleverhans_utils():
    return optional.require("cleverhans.tf2.utils", extra="attacks")


@contextlib.contextmanager
def _quiet_tensorflow_deprecations():
    """TensorFlow's deprecation notices off for the block, then the logger's level as it was."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)
