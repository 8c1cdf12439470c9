"""The base class of every diffusion G(h, t; v) in dh = f dt + G dB."""

import keras

from keras_nsde import validation


@keras.saving.register_keras_serializable(package="keras_nsde")
class Diffusion(keras.layers.Layer):
    """Diagonal diffusion: `call(h, t, f)` returns G with h's shape.

    The solver multiplies G elementwise by the Brownian increment dW. `f` is
    the drift value of the same step, so diffusions such as dropout
    (G = sigma * f) reuse it instead of evaluating the drift twice.

    Subclass it for your own noise: implement `call(h, t, f)`, create any
    learnable parameters in `build(input_shape)` with `add_weight` (they
    become trainable weights of the SDE block; cast them to `h.dtype` in
    `call`, since inputs are not autocast), list your constructor
    arguments in `get_config`, and register the class with
    `@keras.saving.register_keras_serializable()` so `.keras` files load it.

    Attributes:
        is_noisy: False only for `NoDiffusion`; the block then skips sampling.
    """

    is_noisy = True

    def __init__(self, **kwargs):
        # G is computed in the state's dtype: a float32-policy diffusion in a
        # float64 block must not round h and f to float32.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.built = True

    def call(self, h, t, f):
        raise NotImplementedError(
            f"{type(self).__name__} must implement call(h, t, f) returning G."
        )

    def derivative(self, h, t, f):
        """dG_i/dh_i (elementwise, h's shape) when known in closed form, else None.

        The Milstein solver uses it; with None it falls back to its
        derivative-free (Runge-Kutta) form.
        """
        return None

    @property
    def has_derivative(self):
        """Whether this diffusion gives dG_i/dh_i in closed form (it overrides `derivative`)."""
        return type(self).derivative is not Diffusion.derivative

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        # Explicit, so a diffusion made with a dtype policy object serializes.
        return super().get_config()


class ScaledDiffusion(Diffusion):
    """A diffusion with one non-negative scale `sigma` (the paper's noise level)."""

    default_sigma = 0.1

    def __init__(self, sigma=None, **kwargs):
        super().__init__(**kwargs)
        self.sigma = validate_sigma(self.default_sigma if sigma is None else sigma)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


def validate_sigma(sigma):
    """Returns sigma as a float, or raises if it is not a finite number >= 0 (a string or a bool is not)."""
    return validation.number("sigma", sigma, minimum=0.0)
