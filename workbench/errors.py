"""One hierarchy of errors for the whole library.

Every message says what was received, what was expected and how to fix it, e.g.
``ParameterError("pitch=130 is outside the model's range 36..84; pick a MIDI note in that range")``.
"""


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class ParameterError(WorkbenchError, ValueError):
    """An argument has the wrong value, type or shape."""


class AudioError(ParameterError):
    """Audio that cannot be used: unreadable, empty, NaN, wrong shape, absurd sample rate."""


class MissingDependencyError(WorkbenchError, RuntimeError):
    """An optional system or Python dependency is not installed."""


class UnsupportedError(WorkbenchError):
    """The model family cannot do what was asked (a GAN has no likelihood, ...)."""


class CheckpointError(WorkbenchError):
    """A checkpoint folder is missing, incomplete or does not match the model."""
