"""The KL divergence between a posterior and a prior SDE, accumulated with the state (torchsde's `logqp`).

For a posterior dz = f_q(z, t) dt + g(z, t) dW and a prior dz = f_p(z, t) dt + g(z, t) dW
with the same diagonal diffusion g (nonzero), Girsanov's theorem gives the KL
divergence between their path measures from the same z_0:

    KL(Q || P) = E_Q [ integral_{t0}^{t1} 1/2 || (f_q - f_p) / g ||^2 dt ].

Appending the integrand as one more component of the state (the last axis),

    d [z, k] = [f_q(z, t), 1/2 || u ||^2] dt + [g(z, t), 0] dW,   u = (f_q - f_p) / g,

lets every solver and gradient method integrate k alongside z on the same
Brownian path, k(t1) being a one-path estimate of the KL. The Itô and
Stratonovich forms of the two SDEs differ by the same drift correction
(1/2 g dg/dz), so u, and the KL, are the same in both interpretations.

    terms = with_path_kl(posterior_terms, prior_drift)
    ys = solvers.solve(terms, solver, path, append_kl(z0), grid, saveat).ys   # path of the augmented shape
    z, kl = split_kl(ys)
"""

from keras import ops

from keras_nsde.solvers.problem import SDETerms


def with_path_kl(terms, prior_drift):
    """The `SDETerms` of the augmented state [z, k] of shape `(..., d + 1)`; see the module docstring.

    Args:
        terms: the posterior's `SDETerms` on states z of shape `(..., d)`:
            drift f_q(z, t), diagonal diffusion g(z, t, f) (nonzero), optional
            derivative dg/dz.
        prior_drift: f_p(z, t), the prior's drift, with the same diffusion.
    """

    def drift(h, t):
        z = h[..., :-1]
        f = terms.drift(z, t)
        u = (f - prior_drift(z, t)) / terms.diffusion(z, t, f)
        return ops.concatenate([f, 0.5 * ops.sum(ops.square(u), axis=-1, keepdims=True)], axis=-1)

    def diffusion(h, t, f):
        g = terms.diffusion(h[..., :-1], t, f[..., :-1])
        return ops.concatenate([g, ops.zeros_like(h[..., -1:])], axis=-1)

    def derivative(h, t, f):
        dg = terms.diffusion_derivative(h[..., :-1], t, f[..., :-1])
        return None if dg is None else ops.concatenate([dg, ops.zeros_like(h[..., -1:])], axis=-1)

    return SDETerms(drift, diffusion, derivative, terms.variables)


def append_kl(z0):
    """[z0, 0]: the augmented initial state, `(..., d + 1)`."""
    return ops.concatenate([z0, ops.zeros_like(z0[..., :1])], axis=-1)


def split_kl(ys):
    """(z, k) from augmented states `(..., d + 1)`: z `(..., d)` and the accumulated KL k `(...)`."""
    return ys[..., :-1], ys[..., -1]
