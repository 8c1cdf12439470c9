"""One way to name things: a string, a config dict or an instance becomes an object.

    solver = registry.get(identifier, Solver, {"milstein": Milstein, ...}, "solver")
"""

import keras


def get(identifier, base, by_name, argument, **constructor_arguments):
    """Returns an instance of `base` for `identifier`.

    Args:
        identifier: a name in `by_name` (case-insensitive, built with
            `constructor_arguments`), a config dict from
            `keras.saving.serialize_keras_object`, or an instance of `base`.
        base: the class every result is an instance of.
        by_name: {name: subclass of base}.
        argument: the argument's name, for the error message.
    """
    if isinstance(identifier, str):
        cls = by_name.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Unknown {argument}. Expected one of {sorted(by_name)} or a {base.__module__}.{base.__name__}. "
                f"Received: {argument}={identifier!r}"
            )
        return cls(**constructor_arguments)
    if isinstance(identifier, dict):
        try:
            identifier = keras.saving.deserialize_keras_object(identifier)
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(
                f"{argument} is a config dict that does not deserialize ({error}). Received: {argument}={identifier!r}"
            ) from None
    if isinstance(identifier, base):
        return identifier
    raise ValueError(
        f"{argument} must be one of {sorted(by_name)}, a config dict or a {base.__module__}.{base.__name__}. "
        f"Received: {argument}={identifier!r}"
    )


class Configurable:
    """A serializable plain object: `get_config` lists the constructor arguments."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"
