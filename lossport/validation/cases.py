"""Validation cases: deterministic inputs at every spec shape, a shape differing from the export
shape in every dynamic dimension, and the spec's edge cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch

from lossport.spec import Spec


@dataclass(frozen=True)
class Case:
    name: str
    inputs: Tuple[torch.Tensor, ...]
    seed: int


def other_sizes(spec: Spec, config: Mapping[str, Any], dynamic: Sequence[str]) -> Dict[str, int]:
    """Sizes that differ from the export shape in every dynamic dim (static dims unchanged):
    the first listed test shape that does so, else the export sizes with each dynamic dim + 1."""
    export = spec.sizes(0, config)
    for index in range(1, len(spec.shapes)):
        sizes = spec.sizes(index, config)
        if all((sizes[d] != export[d]) == (d in dynamic) for d in spec.dynamic_dims(config)):
            return sizes
    return {k: (v + 1 if k in dynamic else v) for k, v in export.items()}


def check_cases(spec: Spec, config: Mapping[str, Any], dynamic: Sequence[str], seed: int) -> List[Case]:
    """The export check: the export shape and one other shape."""
    return [
        Case("export-shape", spec.sample_inputs(spec.sizes(0, config), seed), seed),
        Case("other-shape", spec.sample_inputs(other_sizes(spec, config, dynamic), seed + 1), seed + 1),
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
