"""The reference loss library. One module per family; each registers its specs on import.

Public classes are re-exported here under the names of the loss catalog.
"""

from lossport.losses.audio import RMSELoss, rmse_loss

__all__ = ["RMSELoss", "rmse_loss"]
