"""cleverhans' PyTorch attacks on the torch backend (`cleverhans.torch.attacks`).

`keras_nsde.evaluation.attacks` picks this module on PyTorch. The Keras
model is a torch module there, so cleverhans' attacks run on it as they are,
differentiating the ensemble's log probabilities with torch autograd; each
function returns `attack(x, y, *scalars)` on NumPy batches.
"""

import numpy as np
import torch
from keras import ops

from keras_nsde import optional


def pgd(ensemble, log_probabilities, norm, steps, x):
    """cleverhans' projected_gradient_descent without random start: `attack(x, y, epsilon, step_size)`."""
    projected_gradient_descent = _cleverhans("projected_gradient_descent").projected_gradient_descent

    def attack(x, y, epsilon, step_size):
        x_adv = projected_gradient_descent(
            log_probabilities, _images(x), epsilon, step_size, steps, norm, clip_min=0.0, clip_max=1.0,
            y=_labels(y), rand_init=False, sanity_checks=False,
        )
        return ops.convert_to_numpy(x_adv.detach())

    return attack


def spsa(ensemble, log_probabilities, settings, x):
    """cleverhans' SPSA (SPSA-Adam, margin loss) on one image at a time: `attack(x, y, epsilon)`.

    `samples` perturbed copies per step: cleverhans mirrors samples / 2
    random signs (+delta and -delta), as the TensorFlow twin does.
    """
    norm, steps, samples, learning_rate, delta = settings
    spsa_attack = _cleverhans("spsa").spsa

    def attack(x, y, epsilon):
        with torch.no_grad():
            x_adv = spsa_attack(
                log_probabilities, _images(x), epsilon, steps, norm, clip_min=0.0, clip_max=1.0, y=_labels(y),
                learning_rate=learning_rate, delta=delta, spsa_samples=samples // 2, sanity_checks=False,
            )
        return ops.convert_to_numpy(x_adv)

    return attack


def require():
    """cleverhans' PyTorch attacks, or the ImportError naming the extra."""
    _cleverhans("projected_gradient_descent")


def _images(x):
    return ops.convert_to_tensor(np.asarray(x, "float32"))


def _labels(y):
    return ops.convert_to_tensor(np.asarray(y, "int64"))


def _cleverhans(attack):
    return optional.require(f"cleverhans.torch.attacks.{attack}", extra="attacks")
