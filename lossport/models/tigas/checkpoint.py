"""TIGAS checkpoints: reading every upstream format, inferring the config, strict fitting.

Accepted files (all read with ``torch.load(weights_only=True)``):

- upstream trainer checkpoints ``{"model_state_dict", "epoch", "optimizer_state_dict", ...}``;
- upstream ``save_model`` files ``{"model_state_dict", "img_size"}``;
- ``{"state_dict": ...}`` dicts, raw state_dicts, and either with every key prefixed
  ``module.`` (``DataParallel``) or ``_orig_mod.`` (``torch.compile``).

The file stores no config. The mode comes from the keys (``aux_branch.*`` = fast,
``spectral_analyzer.*`` = full), ``base_channels`` from ``perceptual_extractor.stem.0.weight``
and ``feature_dim`` from ``perceptual_aggregator.0.weight``. The number of attention heads
leaves no trace in any shape (and has no effect on the numbers): it defaults to upstream's 8
and can be overridden. The state_dict must then fit the model exactly; anything missing,
unexpected or mis-shaped is named in the error. A model is never left with random weights.

A file that needs arbitrary unpickling (Python objects other than tensors, containers and
numpy scalars) is refused, because unpickling it can run code from the file;
``trust_checkpoint=True`` (CLI ``--trust-checkpoint``) loads it anyway, for files from a
trusted source.
"""

from __future__ import annotations

import numbers
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from lossport.errors import CheckpointError, ConfigError, brief_reason
from lossport.models.tigas.model import TIGASModel

PathLike = Union[str, Path]
STEM_KEY = "perceptual_extractor.stem.0.weight"
AGGREGATOR_KEY = "perceptual_aggregator.0.weight"
_WRAPPER_KEYS = ("model_state_dict", "state_dict")
_PREFIXES = ("module.", "_orig_mod.")
_SHOWN = 8  # key names listed per category in a fitting error


@dataclass
class Checkpoint:
    """A state_dict read from a file, with the config inferred from it.

    ``img_size`` is the training image size when the file records one (upstream
    ``save_model``), else ``None``.
    """

    state_dict: Dict[str, torch.Tensor]
    mode: str
    base_channels: int
    feature_dim: int
    img_size: Optional[int]
    source: str

    def build(self, num_attention_heads: int = 8, input_range: str = "[0,1]") -> TIGASModel:
        """A :class:`TIGASModel` of the inferred config with these weights, in eval mode."""
        try:
            model = TIGASModel(
                mode=self.mode,
                base_channels=self.base_channels,
                feature_dim=self.feature_dim,
                num_attention_heads=num_attention_heads,
                img_size=self.img_size or 256,
                input_range=input_range,
            )
        except ConfigError as exc:
            raise CheckpointError(f"{self.source}: {exc}") from exc
        fit_state_dict(model, self.state_dict, self.source)
        return model.eval()


def read_checkpoint(path: PathLike, trust_checkpoint: bool = False) -> Checkpoint:
    """Read a TIGAS checkpoint file (see the module docstring) onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": noise here
            payload = torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except pickle.UnpicklingError as exc:
        needed = _needed_global(str(exc))
        if needed and not trust_checkpoint:
            raise CheckpointError(
                f"{path} contains Python objects besides tensors (it needs {needed}); loading it "
                f"would run code from the file. If you trust its source, pass "
                f"trust_checkpoint=True (CLI: --trust-checkpoint)"
            ) from exc
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({brief_reason(exc)})") from exc
    except Exception as exc:
        # unpickling foreign, truncated or corrupt bytes fails in open-ended ways (KeyError,
        # struct.error, EOFError, RuntimeError from the zip reader, ...): all mean "not a
        # checkpoint"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({brief_reason(exc)})") from exc
    img_size = payload.get("img_size") if isinstance(payload, Mapping) else None
    state_dict = unwrap_state_dict(payload, str(path))
    return checkpoint_from_state_dict(
        state_dict, str(path), int(img_size) if isinstance(img_size, numbers.Integral) else None
    )


def _needed_global(message: str) -> Optional[str]:
    """The Python global a ``weights_only`` refusal names, or ``None`` (the bytes are then no
    pickle of a checkpoint at all). Torch words it differently across releases: "Unsupported
    global: GLOBAL x.y", "Trying to load unsupported GLOBAL x.y whose module x is blocked"."""
    found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", message)
    return found.group(1) if found else None


def _numpy_scalar_globals() -> List[Any]:
    """numpy scalars and dtypes (trainers often save losses as ``numpy.float64``): they only
    rebuild numbers, so ``weights_only`` loading may accept them."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    dtypes = [type(np.dtype(name)) for name in ("float64", "float32", "float16", "int64", "int32", "bool")]
    return [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        *dtypes,
    ]


def unwrap_state_dict(payload: Any, source: str) -> Dict[str, torch.Tensor]:
    """The model's state_dict inside any accepted container, prefixes removed."""
    if isinstance(payload, nn.Module):
        payload = payload.state_dict()
    if isinstance(payload, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(payload.get(key), Mapping):
                payload = payload[key]
                break
    if not isinstance(payload, Mapping) or not payload:
        raise CheckpointError(
            f"{source}: not a TIGAS checkpoint (expected a state_dict or a "
            f"dict with 'model_state_dict', got {type(payload).__name__})"
        )
    tensors = {k: v for k, v in payload.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(payload):
        extra = sorted(str(k) for k, v in payload.items() if not isinstance(v, torch.Tensor))
        raise CheckpointError(
            f"{source}: not a TIGAS checkpoint (entries that are not tensors: {_listing(extra)})"
        )
    for prefix in _PREFIXES:
        if all(key.startswith(prefix) for key in tensors):
            tensors = {key[len(prefix) :]: value for key, value in tensors.items()}
    return tensors


def checkpoint_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], source: str = "state_dict", img_size: Optional[int] = None
) -> Checkpoint:
    """Infer mode and sizes from a state_dict's keys and shapes."""
    keys = set(state_dict)
    fast = any(k.startswith("aux_branch.") for k in keys)
    full = any(k.startswith("spectral_analyzer.") for k in keys)
    missing = [k for k in (STEM_KEY, AGGREGATOR_KEY) if k not in keys]
    if missing or fast == full:
        why = (
            f"missing {', '.join(missing)}"
            if missing
            else "it has both aux_branch.* (fast mode) and spectral_analyzer.* (full mode) keys"
            if fast
            else "it has neither aux_branch.* (fast mode) nor spectral_analyzer.* (full mode) keys"
        )
        raise CheckpointError(
            f"{source}: not a TIGAS checkpoint ({why}); first keys: {_listing(sorted(keys))}"
        )
    stem, aggregator = state_dict[STEM_KEY], state_dict[AGGREGATOR_KEY]
    if stem.dim() != 4 or aggregator.dim() != 2:
        raise CheckpointError(
            f"{source}: unexpected shapes {STEM_KEY} {list(stem.shape)} and "
            f"{AGGREGATOR_KEY} {list(aggregator.shape)}"
        )
    return Checkpoint(
        state_dict=dict(state_dict),
        mode="fast" if fast else "full",
        base_channels=int(stem.shape[0]),
        feature_dim=int(aggregator.shape[0]),
        img_size=img_size,
        source=source,
    )


def fit_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model`` exactly, or raise naming every misfit.

    Values are cast to the model's dtypes (a float16 checkpoint loads into a float32 model).
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = sorted(
        f"{key} {list(state_dict[key].shape)} (model: {list(expected[key].shape)})"
        for key in set(expected) & set(state_dict)
        if state_dict[key].shape != expected[key].shape
    )
    problems = [
        f"{name}: {_listing(items)}"
        for name, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
        if items
    ]
    if problems:
        raise CheckpointError(f"{source} does not fit the TIGAS model it describes; " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)


def _listing(items: List[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    more = len(items) - _SHOWN
    return f"{shown}, ... and {more} more" if more > 0 else shown


def load_model(
    path: PathLike, num_attention_heads: int = 8, input_range: str = "[0,1]", trust_checkpoint: bool = False
) -> TIGASModel:
    """Read a checkpoint file and build the model it describes (eval mode, CPU)."""
    return read_checkpoint(path, trust_checkpoint).build(num_attention_heads, input_range)
