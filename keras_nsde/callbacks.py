"""Training callbacks."""

import math

import keras

from keras_nsde import validation


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` with a `NonFiniteLossError` as soon as a batch's loss is NaN or inf.

    Keras' own `TerminateOnNaN` ends training quietly and leaves the weights
    the bad batch produced (NaN after an update with NaN gradients); this
    raises, with a message that names the likely cause, and first puts back
    the model's weights and the optimizer's state from before that batch, so
    the model holds the last finite weights.

    Compiled training steps (`fit` on TensorFlow and JAX) cannot raise from
    inside the step without a round trip to the host at every step, so this
    callback, not `SDEBlock`, is what catches a drift that turns NaN there.

    Args:
        hint: what probably went wrong, appended to the message (for
            example the noise level and learning rate in use).
        restore_weights: put back the weights and optimizer state from
            before the bad batch (a host copy of them at every batch).
    """

    def __init__(self, hint="", restore_weights=True):
        super().__init__()
        self.hint = validation.text("hint", hint)
        self.restore_weights = validation.boolean("restore_weights", restore_weights)
        self.epoch = 0
        self._saved = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.restore_weights:
            self._saved = [keras.ops.convert_to_numpy(v) for v in self._state_variables()]

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.model.stop_training = True
        restored = ""
        if self.restore_weights and self._saved is not None:
            for variable, value in zip(self._state_variables(), self._saved):
                variable.assign(value)
            restored = " The weights and optimizer state from before that batch were restored."
        raise NonFiniteLossError(
            f"The training loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}; "
            f"training stopped.{restored} {self.hint}".strip()
        )

    def _state_variables(self):
        optimizer = getattr(self.model, "optimizer", None)
        return list(self.model.variables) + (list(optimizer.variables) if optimizer is not None else [])
