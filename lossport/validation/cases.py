"""Validation cases: deterministic inputs at every spec shape, a shape differing from the export
shape in every dynamic dimension, and the spec's edge cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Sequence, Tuple

import torch

from lossport.spec import Spec


@dataclass(frozen=True)
class Case:
    name: str
    inputs: Tuple[torch.Tensor, ...]
    seed: int


def check_cases(spec: Spec, config: Mapping[str, Any], dynamic: Sequence[str], seed: int) -> List[Case]:
    """The export check: the export shape and one other shape."""
    return [
        Case("export-shape", spec.sample_inputs(spec.sizes(0, config), seed), seed),
        Case("other-shape", spec.sample_inputs(spec.other_sizes(config, dynamic), seed + 1), seed + 1),
    ]


def validation_cases(spec: Spec, config: Mapping[str, Any], seed: int) -> List[Case]:
    """Every test shape plus every edge case (edge cases carry their own fixed values)."""
    cases = [
        Case(
            f"shape{i}:" + "x".join(f"{k}={v}" for k, v in spec.shapes[i].items()),
            spec.sample_inputs(spec.sizes(i, config), seed + i),
            seed + i,
        )
        for i in range(len(spec.shapes))
    ]
    cases += [Case(f"edge:{name}", tuple(inputs), seed) for name, inputs in spec.edge_inputs().items()]
    return cases
