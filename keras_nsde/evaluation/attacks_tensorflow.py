"""cleverhans' TF2 attacks on the tensorflow backend, each compiled once per model and attack settings.

`keras_nsde.evaluation.attacks` picks this module on TensorFlow. Each function
returns `attack(x, y, *scalars)` on NumPy batches, compiled as a tf.function
and cached per model (weakly), ensemble, attack settings and image shape.
"""

import contextlib
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_nsde import optional


def pgd(ensemble, log_probabilities, norm, steps, x):
    """PGD without random start: `attack(x, y, epsilon, step_size)` on NumPy batches shaped like x."""
    fast_gradient_method = _cleverhans("fast_gradient_method").fast_gradient_method
    clip_eta = _cleverhans_utils().clip_eta

    def attack(x, y, epsilon, step_size):
        # cleverhans' projected_gradient_descent (rand_init=False): an FGM step, then the projection
        # onto the ball and the box; in a graph loop so that it compiles once for every epsilon.
        def step(i, x_adv):
            x_adv = fast_gradient_method(
                log_probabilities, x_adv, step_size, norm, clip_min=0.0, clip_max=1.0, y=y, sanity_checks=False
            )
            return i + 1, tf.clip_by_value(x + clip_eta(x_adv - x, norm, epsilon), 0.0, 1.0)

        return tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), x))[1]

    return _numpy_in_out(_compiled(ensemble, ("pgd", steps, norm), attack, x))


def spsa(ensemble, log_probabilities, settings, x):
    """cleverhans' SPSA, one image at a time: `attack(x, y, epsilon)` on NumPy batches of one image.

    cleverhans projects onto the L-inf ball; for norm 2 the same optimisation
    runs with a projection onto the L2 ball intersected with the unit box.
    """
    norm, steps, samples, learning_rate, delta = settings
    spsa_module = _cleverhans("spsa")
    project = spsa_module._project_perturbation if norm == np.inf else _l2_projection(_cleverhans_utils().clip_eta)
    optimizer = _spsa_adam(spsa_module, learning_rate, delta, samples)

    def attack(x, y, epsilon):
        def margin_loss(images, labels):  # minimised: minus the true class's margin over the best other class
            logits = log_probabilities(images)
            return -spsa_module.margin_logit_loss(logits, labels, nb_classes=logits.shape[-1])

        return spsa_module.projected_optimization(
            margin_loss, x, y, epsilon, steps, optimizer, clip_min=0.0, clip_max=1.0, project_perturbation=project
        )

    compiled = _numpy_in_out(_compiled(ensemble, ("spsa", steps, samples, learning_rate, delta, norm), attack, x))

    def quiet(*args):
        with _quiet_tensorflow_deprecations():  # cleverhans' loop passes back_prop=False; nothing a user can change
            return compiled(*args)

    return quiet


def require():
    """cleverhans' TF2 attacks, or the ImportError naming the extra."""
    _cleverhans("projected_gradient_descent")


def _l2_projection(clip_eta):
    """cleverhans' SPSA projection for the L2 ball: scale into ||delta||_2 <= epsilon, then clip to the box."""

    def project(perturbation, epsilon, input_image, clip_min=None, clip_max=None):
        delta = clip_eta(perturbation, 2, epsilon)
        return tf.clip_by_value(input_image + delta, clip_min, clip_max) - input_image

    return project


def _spsa_adam(spsa_module, learning_rate, delta, samples):
    """cleverhans' SPSA-Adam estimator, constructed for Keras 3.

    cleverhans 4.0 builds it on `tf.optimizers.Adam(lr=...)`, Keras 2's
    signature, which Keras 3's Adam rejects; the estimator itself only reads
    lr, beta_1, beta_2 and epsilon, so it is built here with Keras 3's
    arguments and the same attributes.
    """

    class SPSAAdam(spsa_module.SPSAAdam):
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


def _compiled(ensemble, key, attack, x):
    """`attack(x, y, *scalars)` compiled once per model, ensemble, attack settings and image shape."""
    cache = _COMPILED.setdefault(ensemble.model, {})
    key = (*key, ensemble.samples, ensemble.noise, ensemble.from_logits, tuple(x.shape[1:]))
    if key not in cache:
        cache[key] = tf.function(attack)
    return cache[key]


# model -> {attack settings: compiled attack}; entries go with their model.
_COMPILED = weakref.WeakKeyDictionary()


def _numpy_in_out(compiled):
    def attack(x, y, *scalars):
        scalars = [tf.constant(scalar, tf.float32) for scalar in scalars]
        return compiled(tf.constant(x), tf.constant(y), *scalars).numpy()

    return attack


def _cleverhans(attack):
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
