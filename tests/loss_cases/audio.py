"""Cases for the audio family (see loss_cases/__init__.py for the contract)."""

import math

import torch

from lossport.errors import ConfigError

from loss_cases import BadCase, HandCase, Peer

t = torch.tensor

HAND = {
    "rmse": [
        # errors 1, -1, 2, 0 -> mse 6/4 = 1.5
        HandCase((t([[1.0, 2.0], [3.0, 4.0]]), t([[0.0, 3.0], [1.0, 4.0]])),
                 {"loss": math.sqrt(1.5 + 1e-6)}),
        HandCase((t([1.0, 1.0]), t([1.0, 1.0])), {"loss": math.sqrt(1e-6)},
                 note="identical: the eps floor"),
        HandCase((t([3.0]), t([0.0])), {"loss": math.sqrt(9.0 + 0.5)}, config={"eps": 0.5}),
    ],
}

BAD = {
    "rmse": [
        BadCase((torch.zeros(2, 3), torch.zeros(2, 4)), r"target must have the same shape as prediction \[2, 3\]"),
        BadCase((torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), r"prediction must be a floating-point"),
        BadCase((torch.zeros(2), torch.zeros(2)), r"eps must be > 0", config={"eps": 0.0}, error=ConfigError),
    ],
}


def _torchmetrics_rmse(config, inputs):
    from torchmetrics.functional import mean_squared_error

    prediction, target = inputs
    # torchmetrics has no eps: compare sqrt(mse + eps) with eps taken out of our result
    mse = mean_squared_error(prediction, target, squared=True)
    return {"loss": torch.sqrt(mse + config.get("eps", 1e-6))}


PEERS = {
    "rmse": Peer("torchmetrics", _torchmetrics_rmse),
}
