"""Registry specs of TIGAS: the scorer model (``tigas``) and the generator loss
(``tigas_generator``).

Both build from plain config values and without network access: seeded random weights by
default (every parameter drawn as in a fresh upstream model), or the weights of a
``checkpoint`` file, whose mode and sizes then replace the config's.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch

from lossport.domains import Interval
from lossport.models.tigas.checkpoint import read_checkpoint
from lossport.models.tigas.loss import TIGASGeneratorLoss
from lossport.models.tigas.model import TIGASModel
from lossport.preprocess import METADATA_KEY, Preprocess
from lossport.registry import Spec, TensorSpec, register

SHAPES = ({"batch": 2, "height": 64, "width": 64}, {"batch": 1, "height": 72, "width": 96},
          {"batch": 3, "height": 48, "width": 40})
SMALL = {"base_channels": 8, "feature_dim": 64, "num_attention_heads": 4}
MODES = ({"mode": "fast"}, {"mode": "full"})
IMAGES = TensorSpec("images", ("batch", 3, "height", "width"),
                    Interval(0.0, 1.0, meaning="RGB intensity"), differentiable=True)


def build_tigas(mode: str = "fast", base_channels: int = 32, feature_dim: int = 256,
                num_attention_heads: int = 8, input_range: str = "[0,1]", img_size: int = 256,
                seed: int = 0, checkpoint: Optional[str] = None,
                trust_checkpoint: bool = False) -> TIGASModel:
    """A :class:`TIGASModel` in eval mode: from ``checkpoint`` when given (its mode and sizes
    win over the config's), else with upstream's fresh-model init drawn from ``seed``."""
    if checkpoint is not None:
        return read_checkpoint(checkpoint, trust_checkpoint).build(num_attention_heads,
                                                                   input_range)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TIGASModel(mode=mode, base_channels=base_channels, feature_dim=feature_dim,
                           num_attention_heads=num_attention_heads, img_size=img_size,
                           input_range=input_range)
    return model.eval()


def build_generator_loss(mode: str = "fast", base_channels: int = 32, feature_dim: int = 256,
                         num_attention_heads: int = 8, input_range: str = "[0,1]",
                         img_size: int = 256, seed: int = 0, checkpoint: Optional[str] = None,
                         trust_checkpoint: bool = False) -> TIGASGeneratorLoss:
    """:class:`TIGASGeneratorLoss` around :func:`build_tigas` of the same arguments."""
    return TIGASGeneratorLoss(build_tigas(mode, base_channels, feature_dim, num_attention_heads,
                                          input_range, img_size, seed, checkpoint,
                                          trust_checkpoint))


def one_minus_mean_score(score: torch.Tensor) -> torch.Tensor:
    """Gradient objective of the scorer: the generator loss ``1 - mean(score)``."""
    return 1.0 - score.mean()


def preprocess_metadata(config: Mapping[str, object]) -> Dict[str, str]:
    """Artifact metadata: the preprocessing contract (``lossport.preprocess``)."""
    contract = Preprocess.default(int(config["img_size"]), str(config["input_range"]))
    return {METADATA_KEY[len("lossport."):]: contract.to_json()}


def edge_images(dtype: torch.dtype) -> Dict[str, tuple]:
    """All-black, all-white, constant grey and a 1-pixel checkerboard, ``[2, 3, 64, 64]``."""
    shape = (2, 3, 64, 64)
    rows = torch.arange(64)[:, None]
    cols = torch.arange(64)[None, :]
    checker = ((rows + cols) % 2).to(dtype).expand(shape).clone()
    return {
        "all_black": (torch.zeros(shape, dtype=dtype),),
        "all_white": (torch.ones(shape, dtype=dtype),),
        "constant_grey": (torch.full(shape, 0.5, dtype=dtype),),
        "checkerboard": (checker,),
    }


# What the scorer and the generator loss share: images in, the same shapes, edge cases,
# tolerance, small test model and both modes. float64 is off because max-pooling and sort
# (median) route gradients by comparisons that float32 and float64 can decide differently:
# float32 artifacts are compared with float32 eager.
_TIGAS_COMMON = dict(inputs=(IMAGES,), shapes=SHAPES, seed="001", edge_cases=edge_images,
                     tolerance="model", float64=False, test_config=SMALL, variants=MODES)

register(Spec(
    name="tigas",
    kind="model",
    build=build_tigas,
    outputs=("score", "logits"),
    summary="TIGAS authenticity scorer (upstream-compatible, fast|full): images [0,1] -> "
            "score [B,1] (1 = real) and logits [B,2]; any H, W >= 32",
    grad_output="score",
    objective=one_minus_mean_score,
    metadata=preprocess_metadata,
    **_TIGAS_COMMON,
))

register(Spec(
    name="tigas_generator",
    kind="loss",
    build=build_generator_loss,
    outputs=("loss",),
    summary="1 - mean(TIGAS score) of generated images in [0,1]; differentiable w.r.t. the "
            "images, TIGAS frozen (seeded random weights unless a checkpoint is given)",
    **_TIGAS_COMMON,
))
