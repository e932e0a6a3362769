"""The one exception family of lossport.

Every error a user can cause derives from :class:`LossportError`; its message says what was
wrong and what to do. The CLI maps these to exit code 2 (bad usage or input) and prints only
the message, never a traceback.
"""

from __future__ import annotations


class LossportError(Exception):
    """Base class of every error lossport raises on purpose."""


class InvalidInputError(LossportError, ValueError):
    """A tensor given to a loss or model has the wrong rank, shape, dtype or value domain."""


class UnknownNameError(LossportError, KeyError):
    """A loss, model, backend or option name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(LossportError, ValueError):
    """A configuration value (``--set key=value``, constructor argument) is invalid."""


class CheckpointError(LossportError):
    """A checkpoint file is unreadable, untrusted, or does not fit the model."""


class ExportError(LossportError):
    """An artifact could not be written, or failed its built-in check after export."""


class ArtifactError(LossportError):
    """A file given as an exported artifact is missing, corrupt, or not made by lossport."""


class ImageError(LossportError):
    """An image file could not be read or converted."""


def brief_reason(exc: BaseException) -> str:
    """``"ErrorType: first sentence of the message"``, for wrapping a third-party error (torch's
    and ONNX Runtime's messages run for paragraphs)."""
    text = str(exc).strip()
    first = text.splitlines()[0].split(". ")[0].rstrip(".,") if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
