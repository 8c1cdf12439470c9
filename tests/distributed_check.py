"""Run by test_train_cli: one epoch of examples/train.py's training, distributed or not; prints the losses.

    python tests/distributed_check.py mirrored none OUT        # 2 logical CPUs in this process
    python tests/distributed_check.py multiworker none OUT     # one worker; TF_CONFIG names the cluster
"""

import json
import os
import sys

import tensorflow as tf

distribute, diffusion, out = sys.argv[1], sys.argv[2], sys.argv[3]
if distribute == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import train  # noqa: E402

train.keras.config.disable_traceback_filtering()


class LossPerBatch(train.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


args = train.parse_args(
    ["--dataset", "digits", "--diffusion", diffusion, "--epochs", "1", "--subset", "128", "--batch-size", "32",
     "--num-steps", "2", "--no-shuffle", "--distribute", distribute, "--verbose", "0", "--out", out]
)
recorder = LossPerBatch()
model, _, _ = train.train(args, callbacks=[recorder])
print(json.dumps({"replicas": model.distribute_strategy.num_replicas_in_sync, "losses": recorder.losses}))
