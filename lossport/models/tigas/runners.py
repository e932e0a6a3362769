"""Scoring images with any form of the TIGAS scorer: eager, TorchScript or ONNX Runtime.

A runner has a :class:`~lossport.preprocess.Preprocess` contract (the image size it wants,
and how ``[0, 1]`` RGB pixels become its input) and ``predict(images)`` mapping resized
``[B, 3, H, W]`` RGB images in ``[0, 1]`` to ``(score [B, 1], logits [B, 2])``.
:func:`score_paths` scores files and directories with any runner.
"""

from __future__ import annotations

import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Protocol, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from lossport.errors import ArtifactError
from lossport.images import ImageSource, Skipped, collect_sources, load_batches
from lossport.models.tigas.checkpoint import brief_reason
from lossport.preprocess import METADATA_KEY, Preprocess, preprocess_from_metadata

PathLike = Union[str, Path]
Prediction = Tuple[torch.Tensor, torch.Tensor]


class Runner(Protocol):
    preprocess: Preprocess

    def predict(self, images: torch.Tensor) -> Prediction:
        """``[B, 3, H, W]`` RGB in ``[0, 1]`` at ``preprocess.size`` -> ``(score, logits)``."""


def _as_prediction(outputs: Any, source: str) -> Prediction:
    """``(score [B, 1], logits [B, 2])`` from a model's outputs (tuple, list or dict)."""
    if isinstance(outputs, dict):
        outputs = [outputs.get("score"), outputs.get("logits")]
    if not isinstance(outputs, (tuple, list)) or len(outputs) < 2:
        raise ArtifactError(f"{source}: not a TIGAS scorer (expected outputs score and logits)")
    score, logits = (torch.as_tensor(np.asarray(o)) if not isinstance(o, torch.Tensor) else o
                     for o in outputs[:2])
    if score.dim() == 1:
        score = score[:, None]
    if score.shape[1:] != (1,) or logits.shape[1:] != (2,) or len(score) != len(logits):
        raise ArtifactError(f"{source}: not a TIGAS scorer (outputs of shapes "
                            f"{list(score.shape)} and {list(logits.shape)}, expected [B, 1] and "
                            f"[B, 2])")
    return score.float(), logits.float()


class OnnxRunner:
    """An exported ``.onnx`` scorer on ONNX Runtime's CPU provider."""

    def __init__(self, path: PathLike) -> None:
        import onnxruntime as ort

        self.source = str(path)
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own pybind error types
            raise ArtifactError(f"{path}: not a loadable ONNX model ({brief_reason(exc)})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ArtifactError(f"{path}: not a TIGAS scorer (it takes {len(inputs)} inputs, "
                                f"expected one image batch)")
        self.input_name = inputs[0].name
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.preprocess = preprocess_from_metadata(metadata, self.source) or Preprocess.default()

    def predict(self, images: torch.Tensor) -> Prediction:
        feed = {self.input_name: self.preprocess.apply(images).numpy().astype(np.float32)}
        names = [o.name for o in self.session.get_outputs()]
        outputs = dict(zip(names, self.session.run(None, feed)))
        ordered = ([outputs["score"], outputs["logits"]] if {"score", "logits"} <= set(outputs)
                   else list(outputs.values()))
        return _as_prediction(ordered, self.source)


class TorchScriptRunner:
    """A TorchScript ``.pt`` scorer (``torch.jit.load``) on the CPU."""

    def __init__(self, path: PathLike) -> None:
        self.source = str(path)
        extra = {METADATA_KEY: "", "lossport.with_grad": ""}
        if not zipfile.is_zipfile(path):
            raise ArtifactError(f"{path}: not a TorchScript archive")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except RuntimeError as exc:
            raise ArtifactError(f"{path}: not a TorchScript archive ({brief_reason(exc)}); an "
                                f"upstream TIGAS checkpoint is read with --checkpoint FILE "
                                f"instead") from None
        self.module.eval()
        self.preprocess = preprocess_from_metadata(extra, self.source) or Preprocess.default()
        # A --with-grad artifact computes input gradients itself and needs grad mode on.
        self.grad_mode = extra["lossport.with_grad"] in ("true", b"true")

    def predict(self, images: torch.Tensor) -> Prediction:
        with torch.set_grad_enabled(self.grad_mode):
            score, logits = _as_prediction(self.module(self.preprocess.apply(images)), self.source)
        return score.detach(), logits.detach()


def open_model_file(path: PathLike) -> Runner:
    """A runner for an exported scorer: ``.onnx`` via ONNX Runtime, else TorchScript."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    return OnnxRunner(path) if path.suffix.lower() == ".onnx" else TorchScriptRunner(path)


@dataclass(frozen=True)
class ImageScore:
    """The scorer's verdict on one file: score in ``[0, 1]`` (1 = real) and 2-class logits."""

    path: str
    score: float
    logits: Tuple[float, float]


@dataclass
class ScoreReport:
    """Scores of the readable images, and the files skipped with the reason."""

    scores: List[ImageScore] = field(default_factory=list)
    skipped: List[Skipped] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready: ``{"scores": [{"path", "score", "logits"}], "skipped": [{"path",
        "reason"}]}`` (logits ordered ``[generated, real]``)."""
        return {"scores": [{"path": s.path, "score": s.score, "logits": list(s.logits)}
                           for s in self.scores],
                "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped]}


def score_paths(runner: Runner, paths: Sequence[PathLike], batch_size: int = 32,
                progress: bool = False) -> ScoreReport:
    """Score image files and directories (recursive) with ``runner``.

    Files named in ``paths`` must be readable images (:class:`~lossport.errors.ImageError`
    otherwise); unreadable or non-image files found in directories are skipped and listed in
    the report. ``progress`` shows a progress bar on stderr.
    """
    sources, skipped = collect_sources(paths)
    return score_sources(runner, sources, skipped, batch_size, progress)


def score_sources(runner: Runner, sources: Sequence[ImageSource], skipped: List[Skipped],
                  batch_size: int = 32, progress: bool = False) -> ScoreReport:
    """:func:`score_paths` on sources already collected with
    :func:`~lossport.images.collect_sources` (so that paths are checked before a model is
    loaded or downloaded)."""
    report = ScoreReport(skipped=skipped)
    with tqdm(total=len(sources), unit="img", file=sys.stderr, disable=not progress,
              leave=False) as bar:
        for names, batch in load_batches(sources, runner.preprocess.size, batch_size, skipped):
            score, logits = runner.predict(batch)
            for name, s, l in zip(names, score[:, 0].tolist(), logits.tolist()):
                report.scores.append(ImageScore(name, s, (l[0], l[1])))
            bar.update(len(names))
        bar.update(bar.total - bar.n)
    return report
