"""Keras layers: the SDE block and its default drifts."""

from keras_nsde.layers.drifts import ConvDrift, MLPDrift
from keras_nsde.layers.group_norm import GroupNorm
from keras_nsde.layers.sde_block import SDEBlock
from keras_nsde.layers.time_conv import TimeConv2D

__all__ = ["ConvDrift", "GroupNorm", "MLPDrift", "SDEBlock", "TimeConv2D"]
