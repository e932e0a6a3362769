"""Exported scorers as TIGAS runners: ``lossport score --model FILE``.

An artifact (ONNX or TorchScript, made by lossport or an upstream export of TIGAS) becomes a
:class:`~lossport.models.tigas.scoring.Runner`: its preprocessing contract comes from its
metadata (default: TIGAS's 256x256 ``[0,1]`` RGB NCHW) and ``predict`` returns ``(score [B, 1],
logits [B, 2])``, from output names ``score``/``logits`` where present, else the first two
outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from lossport.artifact.metadata import preprocess_of
from lossport.artifact.opening import open_artifact
from lossport.artifact.runtime import OnnxArtifact
from lossport.errors import ArtifactError, brief_reason
from lossport.models.tigas.scoring import Prediction, as_prediction
from lossport.spec.preprocess import Preprocess


class ArtifactScorer:
    """A scorer artifact on the CPU, as a runner for :func:`~lossport.models.tigas.scoring.score_paths`;
    ``threads``: ONNX Runtime's intra-op threads (``None``: its default); ``trusted``: allow an
    AOTInductor package (``--trust-artifact``: loading one runs native code from the file)."""

    def __init__(self, path: Union[str, Path], threads: Optional[int] = None, trusted: bool = False) -> None:
        if not Path(path).is_file():
            raise ArtifactError(f"{path}: no such model file")
        self.artifact = open_artifact(Path(path), "cpu", threads, trusted)
        self.source = str(path)
        self.preprocess = preprocess_of(self.artifact.metadata, self.source) or Preprocess.default()
        if isinstance(self.artifact, OnnxArtifact) and len(self.artifact.input_names) != 1:
            raise ArtifactError(
                f"{path}: not a TIGAS scorer (it takes "
                f"{len(self.artifact.input_names)} inputs, expected one image "
                f"batch)"
            )

    def predict(self, images: torch.Tensor) -> Prediction:
        batch = self.preprocess.apply(images)
        try:
            if isinstance(self.artifact, OnnxArtifact):
                named = self.artifact.run({self.artifact.input_names[0]: batch.numpy().astype(np.float32)})
                outputs = (
                    [named["score"], named["logits"]]
                    if {"score", "logits"} <= set(named)
                    else list(named.values())
                )
            else:
                outputs = self.artifact(batch)
        except Exception as exc:  # a loss or another model: it does not take an image batch
            raise ArtifactError(
                f"{self.source}: not a TIGAS scorer (running it on an image "
                f"batch failed: {brief_reason(exc)})"
            ) from None
        score, logits = as_prediction(outputs, self.source)
        return score.detach(), logits.detach()
