"""The pieces of a latent SDE's evidence lower bound: observation log-likelihoods with a mask, and the initial-state KL.

    log_px = masked_log_likelihood(x, mean, scale, "gaussian")        # (batch,), NaN entries of x left out
    kl_z0 = diagonal_gaussian_kl(q_mean, q_log_std, p_mean, p_log_std)  # (batch,)

Both sum over every axis but the first (time and observation dimensions for
`(batch, T, D)` sequences): a sequence's log-likelihood, as torchsde's
latent SDE example sums over time and dimensions and averages over the batch.
"""

import math

from keras import ops

LIKELIHOODS = ("gaussian", "laplace")


def gaussian_log_prob(x, mean, scale):
    """log N(x; mean, scale^2) = -((x - mean) / scale)^2 / 2 - log(scale) - log(2 pi) / 2, elementwise."""
    z = (x - mean) / scale
    return -0.5 * ops.square(z) - ops.log(scale) - 0.5 * math.log(2.0 * math.pi)


def laplace_log_prob(x, mean, scale):
    """log Laplace(x; mean, scale) = -|x - mean| / scale - log(2 scale), elementwise."""
    return -ops.abs(x - mean) / scale - ops.log(2.0 * scale)


LOG_PROBS = {"gaussian": gaussian_log_prob, "laplace": laplace_log_prob}


def observed(x):
    """(mask, filled): 1.0 where x is finite and 0.0 where it is missing (NaN), and x with the missing entries set to 0."""
    finite = ops.isfinite(x)
    return ops.cast(finite, x.dtype), ops.where(finite, x, ops.zeros_like(x))


def masked_log_likelihood(x, mean, scale, likelihood="gaussian"):
    """sum over the observed entries of log p(x | mean, scale): shape `(batch,)`.

    Missing entries (NaN in x) contribute nothing, and neither they nor their
    gradients are ever NaN: the density is evaluated at x with them set to 0,
    then multiplied by the mask.

    Args:
        x: observations `(batch, ...)`, NaN where missing.
        mean: the decoded means, x's shape.
        scale: the observation scale (standard deviation for "gaussian", b
            for "laplace"), broadcastable to x's shape, > 0.
        likelihood: "gaussian" or "laplace".
    """
    if likelihood not in LOG_PROBS:
        raise ValueError(f"likelihood must be one of {list(LIKELIHOODS)}. Received: likelihood={likelihood!r}")
    mask, filled = observed(x)
    log_probs = LOG_PROBS[likelihood](filled, mean, scale) * mask
    return ops.sum(ops.reshape(log_probs, (ops.shape(log_probs)[0], -1)), axis=-1)


def diagonal_gaussian_kl(mean_q, log_std_q, mean_p, log_std_p):
    """KL(N(mean_q, diag s_q^2) || N(mean_p, diag s_p^2)) summed over the last axis.

        KL = sum_i log(s_p / s_q) + (s_q^2 + (m_q - m_p)^2) / (2 s_p^2) - 1/2

    Args:
        mean_q, log_std_q: the posterior's means and log standard deviations, `(..., d)`.
        mean_p, log_std_p: the prior's, broadcastable to `(..., d)`.
    """
    variance_ratio = ops.exp(2.0 * (log_std_q - log_std_p))
    mean_term = ops.square(mean_q - mean_p) * ops.exp(-2.0 * log_std_p)
    return ops.sum(log_std_p - log_std_q + 0.5 * (variance_ratio + mean_term) - 0.5, axis=-1)
