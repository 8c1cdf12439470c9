"""Theorem 3.1 in forward mode: beta_t = dh_t/dw solved alongside h_t."""

from keras import ops

from keras_nsde import backend


def pathwise_jvp(block, h0, direction, noise_seed=None, dW=None):
    """(h_T, beta_T v): the state and its derivative along weight direction v.

    Forward-mode differentiation through the Euler-Maruyama loop carries the
    tangent beta_n v next to h_n, step by step:

        beta_{n+1} v = beta_n v + (df/dw v + df/dh beta_n v) dt
                                + (dG/dw v + dG/dh beta_n v) dW_n,

    the discretised Eq. (10), driven by the same increments dW_n as h. It
    keeps one state and one tangent (O(1) memory in N) and gives one
    directional derivative per solve. The noise is on (as in training);
    pass `noise_seed` or `dW` to fix the path.

    Args:
        block: a built `SDEBlock` with a noisy or a "none" diffusion.
        h0: initial state.
        direction: a list of tensors shaped like `block.trainable_variables`.
        noise_seed: the Brownian path's seed, as in `SDEBlock.call`.
        dW: or its increments, as in `SDEBlock.call`.

    Returns:
        (h_T, beta_T v), both with h0's shape (or the trajectory's, with
        `return_trajectory=True`).
    """
    variables = block.trainable_variables
    if len(direction) != len(variables):
        raise ValueError(
            f"direction must have one tensor per trainable variable ({len(variables)}). "
            f"Received: {len(direction)} tensors"
        )
    h0 = ops.convert_to_tensor(h0, block.compute_dtype)
    path = block.brownian_path(h0, noise_seed, dW) if block.diffusion.is_noisy else None
    direction = [ops.cast(d, v.dtype) for d, v in zip(direction, variables)]
    return backend.get().weight_jvp(lambda: block.solve(h0, path, gradient="autodiff"), variables, direction)
