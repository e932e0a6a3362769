"""Cases for ``tigas_generator``: values from the upstream-made fixtures in tests/fixtures/tigas."""

import functools

import numpy as np
import torch
from conftest import FIXTURES

from loss_cases import BadCase, HandCase, Peer
from lossport.losses import TIGASGeneratorLoss
from lossport.models.tigas import load_model


def _from_checkpoint(path):
    return TIGASGeneratorLoss(load_model(path, num_attention_heads=4))


def _fixture_cases():
    cases = []
    for mode in ("fast", "full"):
        io = FIXTURES / f"tigas_{mode}_small_io.npz"
        data = np.load(io)
        for index in (0, 1):
            expected = 1.0 - float(data[f"score_{index}"].astype(np.float64).mean())
            cases.append(
                HandCase(
                    (torch.from_numpy(data[f"input_{index}"]).float(),),
                    {"loss": expected},
                    build=functools.partial(_from_checkpoint, FIXTURES / f"tigas_{mode}_small.pt"),
                    note=f"upstream {mode} fixture case {index}",
                    atol=1e-5,
                )
            )
    return cases


SMALL = {"base_channels": 8, "feature_dim": 64, "num_attention_heads": 4}

HAND = {"tigas_generator": _fixture_cases()}

BAD = {
    "tigas_generator": [
        BadCase(
            (torch.rand(3, 64, 64),), r"images must have shape \[batch, 3, height, width\]", config=SMALL
        ),
        BadCase((torch.rand(1, 4, 64, 64),), r"images must have size 3", config=SMALL),
        BadCase((torch.rand(1, 3, 16, 64),), r"at least 32x32 pixels", config=SMALL),
        BadCase((torch.zeros(1, 3, 64, 64, dtype=torch.uint8),), r"floating-point", config=SMALL),
    ],
}

PEERS = {"tigas_generator": Peer.none("upstream TIGAS is matched through its fixtures (HAND)")}
