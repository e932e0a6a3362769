"""TIGAS image-authenticity scorer: upstream-compatible model (fast and full modes),
checkpoint loading and the ``TIGAS`` scorer API.

Importing this package registers the ``tigas`` model spec. The TIGAS-based losses live with the
other losses (:mod:`lossport.losses.tigas`).
"""

from lossport.models.tigas import specs  # noqa: F401  (registers the spec)
from lossport.models.tigas.checkpoint import Checkpoint, load_model, read_checkpoint
from lossport.models.tigas.hub import download_checkpoint
from lossport.models.tigas.model import TIGASModel
from lossport.models.tigas.scorer import TIGAS

__all__ = ["TIGAS", "TIGASModel", "Checkpoint", "read_checkpoint", "load_model", "download_checkpoint"]
