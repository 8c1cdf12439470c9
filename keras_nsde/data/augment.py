"""The authors' augmentation and input scaling, as tf.data map functions (the `tensorflow` extra)."""

from keras_nsde import optional

tf = optional.require("tensorflow", extra="tensorflow")


def to_unit_range(image, label):
    """uint8 [0, 255] (or float) image -> float32 in [0, 1]; no normalisation (as the authors)."""
    if image.dtype == tf.uint8:
        image = tf.cast(image, "float32") / 255.0
    return tf.cast(image, "float32"), tf.cast(label, "int32")


def random_crop_with_padding(padding):
    """Pads each side by `padding` zeros and crops back at a random offset (no flips)."""

    def crop(image, label):
        shape = tf.shape(image)
        padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
        return tf.image.random_crop(padded, shape), label

    return crop
