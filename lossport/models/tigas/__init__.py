"""TIGAS image-authenticity scorer: upstream-compatible model (fast and full modes),
checkpoint loading, the ``TIGAS`` scorer API and the generator loss.

Importing this package registers the ``tigas`` model spec and the ``tigas_generator`` loss
spec.
"""

from lossport.models.tigas import specs  # noqa: F401  (registers the specs)
from lossport.models.tigas.checkpoint import Checkpoint, load_model, read_checkpoint
from lossport.models.tigas.hub import download_checkpoint
from lossport.models.tigas.loss import TIGASGeneratorLoss
from lossport.models.tigas.model import TIGASModel
from lossport.models.tigas.scorer import TIGAS

__all__ = ["TIGAS", "TIGASModel", "TIGASGeneratorLoss", "Checkpoint", "read_checkpoint",
           "load_model", "download_checkpoint"]
