"""Per-family test cases for the loss catalog, collected by ``tests/test_loss_catalog.py``.

Each family module defines three dicts keyed by registry name:

- ``HAND``: ``name -> [HandCase]``, values computed by hand (or by an independent formula
  written in the test, never by the code under test) on tiny inputs;
- ``BAD``: ``name -> [BadCase]``, invalid inputs and the error message they must produce;
- ``PEERS``: ``name -> Peer``, the public implementation to match in float64, or
  ``Peer.none("why")`` where LOSSES.md names no installable peer.

``test_loss_catalog`` fails for any registered loss missing from any of the three, so a new
loss cannot skip them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

FAMILIES = (
    "audio",
    "classification",
    "boxes",
    "detection",
    "distillation",
    "keypoint",
    "segmentation",
    "tigas_loss",
    "tigas_generator",
)


@dataclass
class HandCase:
    """``build(**config)(*inputs)`` flattened must equal ``expected`` (per output name);
    ``module``, when given, builds the module instead (e.g. from a checkpoint file)."""

    inputs: Tuple[Any, ...]
    expected: Mapping[str, float]
    config: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    atol: float = 1e-6
    build: Optional[Callable[[], torch.nn.Module]] = None


@dataclass
class BadCase:
    """``build(**config)(*inputs)`` must raise ``error`` with a message matching ``match``."""

    inputs: Tuple[Any, ...]
    match: str
    config: Mapping[str, Any] = field(default_factory=dict)
    error: type = None  # default: lossport.errors.InvalidInputError
    note: str = ""


@dataclass
class Peer:
    """``reference(config, inputs) -> {output name: tensor}`` from a public implementation."""

    module: Optional[str]
    reference: Optional[Callable[[Mapping[str, Any], Sequence[torch.Tensor]], Dict[str, torch.Tensor]]]
    reason: str = ""
    configs: Sequence[Mapping[str, Any]] = ({},)

    @staticmethod
    def none(reason: str) -> "Peer":
        return Peer(module=None, reference=None, reason=reason)


def _collect(attr: str) -> Dict[str, Any]:
    merged: Dict[str, Any] = {}
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"loss_cases.{family}")
        except ModuleNotFoundError as exc:
            if exc.name != f"loss_cases.{family}":
                raise
            continue
        for name, value in getattr(module, attr).items():
            assert name not in merged, f"{attr}[{name!r}] defined twice"
            merged[name] = value
    return merged


def hand_cases() -> Dict[str, List[HandCase]]:
    return _collect("HAND")


def bad_cases() -> Dict[str, List[BadCase]]:
    return _collect("BAD")


def peers() -> Dict[str, Peer]:
    return _collect("PEERS")
