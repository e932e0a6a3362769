"""What every format's writer gets: one :class:`WriteRequest`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

import torch
from torch import nn

from lossport.export.calibration import CalibrationSet
from lossport.spec import Spec


@dataclass(frozen=True)
class WriteRequest:
    """What a format's writer gets: the module in eval mode, example inputs at the spec's first
    sizes (``other``: at sizes differing in every dynamic axis, for checks of a trace), the temp
    file to write, the metadata to embed (``lossport.*`` string values), the dynamic dim names,
    the output names (outputs, then gradients with ``with_grad``), the ONNX opset, the
    numeric precision, the device an AOTInductor package is compiled for and, for a calibrated
    precision (int8), the calibration images."""

    module: nn.Module
    spec: Spec
    example: Sequence[torch.Tensor]
    other: Sequence[torch.Tensor]
    path: Path
    metadata: Mapping[str, str]
    dynamic: Sequence[str]
    output_names: List[str]
    with_grad: bool
    opset: int
    precision: str
    device: str = "cpu"
    calibration: Optional[CalibrationSet] = None
