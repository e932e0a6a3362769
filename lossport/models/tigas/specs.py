"""The ``tigas`` model spec, what the TIGAS-based loss specs share with it, and how weight
options (a checkpoint file, the hub, or seeded random weights) resolve to a config and a model.

A spec builds only from plain config values and without files or network: seeded random weights
(every parameter drawn as in a fresh upstream model). Trained weights come from a checkpoint
through :func:`resolve_weights`; an artifact records which file by name and sha256
(:class:`~lossport.io.digest.FileRecord`), never by path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch

from lossport.errors import ConfigError
from lossport.io.digest import FileRecord
from lossport.models.tigas.checkpoint import read_checkpoint
from lossport.models.tigas.hub import download_checkpoint
from lossport.models.tigas.model import (
    MAX_BASE_CHANNELS,
    MAX_FEATURE_DIM,
    MAX_HEADS,
    MIN_SIDE,
    TIGASModel,
)
from lossport.spec import Spec, TensorSpec, register
from lossport.spec.domains import Interval
from lossport.spec.limits import MAX_IMAGE_SIDE
from lossport.spec.preprocess import METADATA_KEY, Preprocess

SHAPES = (
    {"batch": 2, "height": 64, "width": 64},
    {"batch": 1, "height": 72, "width": 96},
    {"batch": 3, "height": 48, "width": 40},
)
SMALL = {"base_channels": 8, "feature_dim": 64, "num_attention_heads": 4}
MODES = ({"mode": "fast"}, {"mode": "full"})
IMAGES = TensorSpec(
    "images",
    ("batch", 3, "height", "width"),
    Interval(0.0, 1.0, meaning="RGB intensity"),
    differentiable=True,
)
DEFAULT_IMG_SIZE = 256
# Config keys a checkpoint decides (mode and sizes are read from its keys and shapes).
CHECKPOINT_KEYS = ("mode", "base_channels", "feature_dim", "num_attention_heads", "input_range")
LIMITS = {
    "base_channels": (1, MAX_BASE_CHANNELS),
    "feature_dim": (4, MAX_FEATURE_DIM),
    "num_attention_heads": (1, MAX_HEADS),
    "img_size": (MIN_SIDE, MAX_IMAGE_SIDE),
    "seed": (0, 2**63 - 1),
}


def build_tigas(
    mode: str = "fast",
    base_channels: int = 32,
    feature_dim: int = 256,
    num_attention_heads: int = 8,
    input_range: str = "[0,1]",
    img_size: int = DEFAULT_IMG_SIZE,
    seed: int = 0,
) -> TIGASModel:
    """A :class:`TIGASModel` in eval mode with upstream's fresh-model init drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TIGASModel(
            mode=mode,
            base_channels=base_channels,
            feature_dim=feature_dim,
            num_attention_heads=num_attention_heads,
            img_size=img_size,
            input_range=input_range,
        )
    return model.eval()


def one_minus_mean_score(score: torch.Tensor) -> torch.Tensor:
    """Gradient objective of the scorer: the generator loss ``1 - mean(score)``."""
    return 1.0 - score.mean()


def preprocess_metadata(config: Mapping[str, object]) -> Dict[str, str]:
    """Artifact metadata: the preprocessing contract (``lossport.preprocess``)."""
    contract = Preprocess.default(int(config["img_size"]), str(config["input_range"]))
    return {METADATA_KEY[len("lossport.") :]: contract.to_json()}


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


# What the scorer and the TIGAS generator loss (lossport.losses.tigas) share: images in, the
# same shapes, edge cases, tolerance, bounds, small test model and both modes. float64 is off
# because max-pooling and sort (median) route gradients by comparisons that float32 and float64
# can decide differently: float32 artifacts are compared with float32 eager.
TIGAS_COMMON: Mapping[str, Any] = {
    "inputs": (IMAGES,),
    "shapes": SHAPES,
    "edge_cases": edge_images,
    "tolerance": "model",
    "float64": False,
    "test_config": SMALL,
    "variants": MODES,
    "limits": LIMITS,
}

TIGAS_SPEC = register(
    Spec(
        name="tigas",
        kind="model",
        build=build_tigas,
        outputs=("score", "logits"),
        source="TIGAS docs: TIGAS as a generator loss",
        summary="TIGAS authenticity scorer (upstream-compatible, fast|full): images [0,1] -> "
        "score [B,1] (1 = real) and logits [B,2]; any H, W >= 32",
        grad_output="score",
        objective=one_minus_mean_score,
        metadata=preprocess_metadata,
        weights_loader=lambda config, path, trust: load_checkpoint_model(config, path, trust),
        **TIGAS_COMMON,
    )
)


@dataclass
class ResolvedTIGAS:
    """A TIGAS model ready to export or validate: its config (as recorded in an artifact), the
    model, and the checkpoint it was read from (``None`` for seeded random weights)."""

    config: Dict[str, Any]
    model: TIGASModel
    weights: Optional[FileRecord]


def resolve_weights(
    *,
    mode: Optional[str] = None,
    checkpoint: Optional[Path] = None,
    weights: Optional[str] = None,
    trust_checkpoint: bool = False,
    overrides: Optional[Mapping[str, Any]] = None,
    img_size: Optional[int] = None,
) -> ResolvedTIGAS:
    """The TIGAS model for the weight options of ``lossport export|validate tigas``.

    ``checkpoint`` (a file) or ``weights="hub"`` (upstream's published file, the default when
    neither is given) load trained weights: mode and sizes then come from the file, and
    ``mode`` must agree. ``weights="random"`` builds the seeded random model of ``mode``.
    ``overrides`` are ``--set`` values; ``img_size`` the preprocessing contract's side.
    """
    if checkpoint is not None and weights is not None:
        raise ConfigError("give either --checkpoint FILE or --weights hub|random, not both")
    if trust_checkpoint and checkpoint is None and weights != "hub":
        raise ConfigError("--trust-checkpoint applies to --checkpoint FILE (or --weights hub)")
    overrides = dict(overrides or {})
    if img_size is not None:
        overrides["img_size"] = img_size
    if weights == "random":
        if mode is not None:
            overrides["mode"] = mode
        config = TIGAS_SPEC.resolve_config(overrides)
        return ResolvedTIGAS(config, TIGAS_SPEC.instantiate(config), None)
    decided = sorted(set(overrides) & {"mode", "base_channels", "feature_dim"})
    if decided:
        raise ConfigError(f"--set {', '.join(decided)}: a checkpoint decides these; drop them")
    config = TIGAS_SPEC.resolve_config(overrides)
    source = Path(checkpoint) if checkpoint is not None else download_checkpoint()
    model = load_checkpoint_model(config, source, trust_checkpoint, check_sizes=False)
    if mode is not None and model.config["mode"] != mode:
        raise ConfigError(
            f"--mode {mode} but the checkpoint holds a {model.config['mode']}-mode "
            f"model; drop --mode or use a {mode}-mode checkpoint"
        )
    config.update({key: model.config[key] for key in CHECKPOINT_KEYS})
    return ResolvedTIGAS(config, model, FileRecord.of(source))


def load_checkpoint_model(
    config: Mapping[str, Any], path: Path, trust_checkpoint: bool = False, check_sizes: bool = True
) -> TIGASModel:
    """The model of checkpoint ``path``, with the heads and input range of ``config``; with
    ``check_sizes``, the file's mode and sizes must be the config's."""
    checkpoint = read_checkpoint(path, trust_checkpoint)
    if check_sizes:
        found = {
            "mode": checkpoint.mode,
            "base_channels": checkpoint.base_channels,
            "feature_dim": checkpoint.feature_dim,
        }
        differ = {k: v for k, v in found.items() if config.get(k) != v}
        if differ:
            raise ConfigError(
                f"{path} holds a model with {differ}, the config says { {k: config.get(k) for k in differ} }"
            )
    return checkpoint.build(int(config["num_attention_heads"]), str(config["input_range"]))
