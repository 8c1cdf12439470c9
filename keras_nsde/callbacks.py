"""Training callbacks."""

import math

import keras


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` with a `NonFiniteLossError` as soon as a batch's loss is NaN or inf.

    Keras' own `TerminateOnNaN` ends training quietly; this raises, so a
    script fails with a message that names the likely cause instead of
    saving NaN weights.

    Args:
        hint: what probably went wrong, appended to the message (for
            example the noise level and learning rate in use).
    """

    def __init__(self, hint=""):
        super().__init__()
        self.hint = hint
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise NonFiniteLossError(
                f"The training loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}; "
                f"training stopped before the weights were saved. {self.hint}".strip()
            )
