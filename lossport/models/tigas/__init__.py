"""TIGAS image-authenticity scorer: upstream-compatible model, checkpoints, scorer API."""

from lossport.models.tigas.model import TIGASModel

__all__ = ["TIGASModel"]
