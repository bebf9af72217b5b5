"""Exceptions with messages that name the bad input and what was expected."""


class Mhr2Error(Exception):
    """Base class of the errors mhr2_ros raises on bad input."""


class ConfigError(Mhr2Error, ValueError):
    """A configuration file or value is invalid."""


class InputError(Mhr2Error, ValueError):
    """An image, video, folder or camera cannot be used as input."""


class CheckpointError(Mhr2Error, RuntimeError):
    """Weights are missing, corrupted, or do not match the model configuration."""
