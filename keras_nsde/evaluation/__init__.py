"""Evaluation: test-time noise, PGD attacks, corruptions, perturbation growth.

The figures live in `keras_nsde.evaluation.figures` (imports matplotlib).
"""

from keras_nsde.evaluation.attacks import attack_correct, pgd_accuracy, pgd_attack, spsa_attack
from keras_nsde.evaluation.ensemble import (
    TestTimeEnsemble,
    accuracy,
    ensemble_predict,
    is_noisy,
    noise_at_inference,
    sde_blocks,
)
from keras_nsde.evaluation import statistics
from keras_nsde.evaluation.robustness import corruption_accuracy, perturbation_growth

__all__ = [
    "TestTimeEnsemble",
    "accuracy",
    "attack_correct",
    "corruption_accuracy",
    "ensemble_predict",
    "is_noisy",
    "noise_at_inference",
    "perturbation_growth",
    "pgd_accuracy",
    "pgd_attack",
    "sde_blocks",
    "spsa_attack",
    "statistics",
]
