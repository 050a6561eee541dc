"""Exceptions raised by learnt. Each names the bad value and what was expected."""
from __future__ import annotations


class LearntError(Exception):
    """Base class of every error learnt raises on purpose."""


class ConfigError(LearntError, ValueError):
    """A config key is unknown or a value has the wrong type."""


class CheckpointError(LearntError, ValueError):
    """A checkpoint file is corrupt, missing or of another architecture."""


class NonFiniteError(LearntError, FloatingPointError):
    """A gradient or loss became NaN or infinite."""


class NotFoundError(LearntError, KeyError):
    """A named thing (experiment, shipped model) does not exist; the message lists what does."""

    def __str__(self) -> str:   # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SearchFailedError(LearntError, RuntimeError):
    """Every child of an architecture-search batch failed; the message carries their error."""
