"""cleverhans' PGD and SPSA written once in keras.ops: the attacks on JAX.

cleverhans 4.0's JAX attacks import `jax.experimental.stax`, gone from JAX,
so `keras_nsde.evaluation.attacks` picks this module on JAX (cleverhans'
own attacks stay in use on TensorFlow and PyTorch). The algorithms are
cleverhans' TF2 ones as `attacks_tensorflow` runs them, step for step:

PGD (`projected_gradient_descent` without random start, Kurakin et al. /
Madry et al.): from x_0 = x, each step is the fast gradient method on the
summed cross-entropy L of the attacked log probabilities,

    x' = clip(x_k + step_size * d, 0, 1),  d = sign(g) (L-inf) or g / sqrt(max(||g||_2^2, 1e-12)) (L2),

then the projection onto the ball and the box,
x_{k+1} = clip(x + clip_eta(x' - x), 0, 1), where clip_eta clips each
component to [-epsilon, epsilon] (L-inf) or scales eta by
min(1, epsilon / ||eta||_2) (L2, per example). tests/test_attacks.py checks
on TensorFlow that it gives cleverhans' perturbation.

SPSA (Uesato et al. 2018; `projected_optimization` with `SPSAAdam`), one
image at a time: a perturbation drawn uniformly from [-epsilon, epsilon]^d
and projected, then `steps` Adam steps on the SPSA gradient estimate of the
margin log p_y - max_{j != y} log p_j, g = mean_i(L(x + p + delta v_i) v_i) / delta
over `samples` mirrored random sign vectors (+delta v_i and -delta v_i), each
step followed by the projection onto the L-inf ball (or, for norm 2, the L2
ball as `attacks_tensorflow` does) intersected with the unit box.

The gradient is the backend's `input_gradient` hook; each step is compiled
once per model and attack settings by the backend's `compile_stateful`
(`jax.jit` with the model's variables, its seed generators' states
included, passed as state, so the test-time noise of an EOT ensemble is
fresh at every step) and called from a Python loop: XLA:CPU runs
convolutions inside a while loop far slower than unrolled.
"""

import weakref

import keras
import numpy as np
from keras import ops

from keras_nsde import backend

# cleverhans' guard against dividing by a zero norm (inside the square root).
AVOID_ZERO_DIV = 1e-12
# Adam's moment decays and epsilon in SPSA-Adam: Keras 3's Adam defaults, as attacks_tensorflow builds it.
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7


def pgd(ensemble, log_probabilities, norm, steps, x):
    """PGD without random start: `attack(x, y, epsilon, step_size)` on NumPy batches."""

    def make_step():
        def step(x, x_adv, y, epsilon, step_size):
            return pgd_step(log_probabilities, (x, y), x_adv, epsilon, step_size, norm)

        return backend.get().compile_stateful(step, ensemble.model.variables)

    step = _compiled(ensemble, ("pgd", norm), make_step)

    def attack(x, y, epsilon, step_size):
        x, y = ops.convert_to_tensor(x, "float32"), ops.convert_to_tensor(y, "int32")
        epsilon, step_size = ops.convert_to_tensor(epsilon, "float32"), ops.convert_to_tensor(step_size, "float32")
        x_adv = x
        for _ in range(steps):
            x_adv = step(x, x_adv, y, epsilon, step_size)
        return ops.convert_to_numpy(x_adv)

    return attack


def spsa(ensemble, log_probabilities, settings, x):
    """SPSA-Adam, one image at a time: `attack(x, y, epsilon)` on NumPy batches of one image.

    The random signs and the start are drawn by the backend's stateless
    sampler from a per-image seed, itself drawn from a `SeedGenerator`
    seeded by Keras' global seed (`keras.utils.set_random_seed`).
    """

    norm, steps = settings.norm, settings.steps

    def make_functions():
        def start(x, epsilon, seed):
            return spsa_start(x, epsilon, _draw_seed(seed, 0), norm)

        def step(x, y, state, epsilon, seed):
            return spsa_step(log_probabilities, (x, y), state, epsilon, _draw_seed(seed, state[3] + 1.0), settings)

        compile_stateful = backend.get().compile_stateful
        return compile_stateful(start), compile_stateful(step, ensemble.model.variables)

    start, step = _compiled(ensemble, ("spsa", *settings[:1], *settings[2:]), make_functions)
    seeds = keras.random.SeedGenerator()

    def attack(x, y, epsilon):
        x, y = ops.convert_to_tensor(x, "float32"), ops.convert_to_tensor(y, "int32")
        epsilon = ops.convert_to_tensor(epsilon, "float32")
        seed = keras.random.randint((2,), 0, 2**31 - 1, dtype="int32", seed=seeds)
        state = (start(x, epsilon, seed), ops.zeros_like(x), ops.zeros_like(x), ops.convert_to_tensor(0.0, "float32"))
        for _ in range(steps):
            state = tuple(step(x, y, state, epsilon, seed))
        return ops.convert_to_numpy(x + state[0])

    return attack


def require():
    """Nothing to import: the attacks are written in keras.ops."""


def pgd_step(log_probabilities, target, x_adv, epsilon, step_size, norm):
    """One PGD step from x_adv: the fast gradient step, then the projection onto the ball around x and the box.

    `target` is (x, y), the clean images and their labels.
    """
    x, y = target

    def loss(images):  # cleverhans' default: sparse softmax cross-entropy, summed over the batch
        return ops.sum(ops.sparse_categorical_crossentropy(y, log_probabilities(images), from_logits=True))

    gradient = backend.get().input_gradient(loss, x_adv)
    x_adv = ops.clip(x_adv + optimize_linear(gradient, step_size, norm), 0.0, 1.0)
    return ops.clip(x + clip_eta(x_adv - x, norm, epsilon), 0.0, 1.0)


def optimize_linear(gradient, epsilon, norm):
    """argmax of <eta, gradient> over ||eta||_norm <= epsilon (cleverhans' `optimize_linear`), per example."""
    if norm == np.inf:
        return epsilon * ops.sign(gradient)
    square = ops.maximum(AVOID_ZERO_DIV, ops.sum(ops.square(gradient), axis=_feature_axes(gradient), keepdims=True))
    return epsilon * (gradient / ops.sqrt(square))


def clip_eta(eta, norm, epsilon):
    """eta clipped into the norm ball of radius epsilon (cleverhans' `clip_eta`): clipped, not normalised."""
    if norm == np.inf:
        return ops.clip(eta, -epsilon, epsilon)
    size = ops.sqrt(ops.maximum(AVOID_ZERO_DIV, ops.sum(ops.square(eta), axis=_feature_axes(eta), keepdims=True)))
    return eta * ops.minimum(1.0, epsilon / size)


def project_perturbation(perturbation, epsilon, image, norm):
    """The perturbation into the ball, then x + perturbation into the unit box (cleverhans' SPSA projection)."""
    if norm == np.inf:
        perturbation = ops.clip(perturbation, -epsilon, epsilon)
    else:
        perturbation = clip_eta(perturbation, 2, epsilon)
    return ops.clip(image + perturbation, 0.0, 1.0) - image


def spsa_start(x, epsilon, seed, norm):
    """cleverhans' start: uniform in [-epsilon, epsilon] per component, projected."""
    uniform = backend.get().uniform(backend.get().random_shape(x), seed, "float32")
    return project_perturbation(epsilon * (2.0 * uniform - 1.0), epsilon, x, norm)


def spsa_step(log_probabilities, target, state, epsilon, seed, settings):
    """One SPSA-Adam step: the SPSA gradient estimate, Adam's update, the projection.

    Args:
        log_probabilities: the attacked ensemble's log p(y | x).
        target: (x, y), the image and its label.
        state: (perturbation, m, u, t): the perturbation, Adam's moments and
            the number of steps taken so far.
        epsilon: the ball's radius.
        seed: the backend's seed of this step's random signs.
        settings: the `SPSASettings` (norm, samples, learning_rate, delta).

    Returns:
        (perturbation, m, u, t) after the step.
    """
    x, y = target
    perturbation, m, u, t = state
    norm, samples, learning_rate, delta = settings.norm, settings.samples, settings.learning_rate, settings.delta
    half = samples // 2  # mirrored: +delta and -delta
    shape = (half,) + tuple(x.shape[1:])
    uniform = backend.get().uniform(shape, seed, "float32")
    delta_x = delta * ops.sign(2.0 * uniform - 1.0)  # cleverhans: sign(uniform(-1, 1))
    delta_x = ops.concatenate([delta_x, -delta_x], axis=0)
    logits = log_probabilities(x + (perturbation + delta_x))
    losses = margin(logits, y)  # minimised: the true class's margin over the best other class
    losses = ops.reshape(losses, (samples,) + (1,) * (len(x.shape) - 1))
    gradient = ops.expand_dims(ops.mean(losses * delta_x, axis=0) / delta, 0)
    t = t + 1.0
    m = ADAM_BETA_1 * m + (1.0 - ADAM_BETA_1) * gradient
    u = ADAM_BETA_2 * u + (1.0 - ADAM_BETA_2) * gradient * gradient
    m_hat = m / (1.0 - ops.power(ADAM_BETA_1, t))
    u_hat = u / (1.0 - ops.power(ADAM_BETA_2, t))
    perturbation = perturbation - learning_rate * m_hat / (ops.sqrt(u_hat) + ADAM_EPSILON)
    return project_perturbation(perturbation, epsilon, x, norm), m, u, t


def margin(logits, y):
    """log p_y - max_{j != y} log p_j per row (cleverhans' `margin_logit_loss`, sign flipped)."""
    mask = ops.one_hot(y, logits.shape[-1], dtype=logits.dtype)
    label_logits = ops.sum(mask * logits, axis=-1)
    best_other = ops.max(logits - mask * 99999.0, axis=-1)
    return label_logits - best_other


def _draw_seed(seed, n):
    """The backend's stateless seed of draw n (0: the start, t: step t) from the attack's (2,) int32 seed."""
    return backend.get().fold_in(backend.get().seed(seed), ops.cast(n, "int32"))


def _feature_axes(x):
    return tuple(range(1, len(x.shape)))


def _compiled(ensemble, key, make):
    """`make()`'s compiled functions, once per model, ensemble and attack settings (new shapes: JAX retraces)."""
    cache = _COMPILED.setdefault(ensemble.model, {})
    key = (*key, ensemble.samples, ensemble.noise, ensemble.from_logits)
    if key not in cache:
        cache[key] = make()
    return cache[key]


# model -> {attack settings: compiled steps}; entries go with their model.
_COMPILED = weakref.WeakKeyDictionary()
