"""Scoring image files with any form of the TIGAS scorer: eager (:class:`~.scorer.TIGAS`) or an
exported artifact (:mod:`lossport.scoring`).

A runner has a :class:`~lossport.spec.preprocess.Preprocess` contract (the image size it wants,
and how ``[0, 1]`` RGB pixels become its input) and ``predict(images)`` mapping resized
``[B, 3, H, W]`` RGB images in ``[0, 1]`` to ``(score [B, 1], logits [B, 2])``.
:func:`score_paths` scores files and directories with any runner; :class:`ScoreReport` renders
the result as a table, CSV or JSON. :func:`iter_scores` gives the scores batch by batch, with
decoding in worker threads overlapped with inference (:mod:`lossport.io.batching`), for
datasets too large to hold.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Protocol, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from lossport.errors import ArtifactError
from lossport.io.batching import load_batches
from lossport.io.images import ImageSource, Skipped, collect_sources
from lossport.spec.preprocess import Preprocess

PathLike = Union[str, Path]
Prediction = Tuple[torch.Tensor, torch.Tensor]


class Runner(Protocol):
    preprocess: Preprocess

    def predict(self, images: torch.Tensor) -> Prediction:
        """``[B, 3, H, W]`` RGB in ``[0, 1]`` at ``preprocess.size`` -> ``(score, logits)``."""


def as_prediction(outputs: Any, source: str) -> Prediction:
    """``(score [B, 1], logits [B, 2])`` from a model's outputs (tuple, list or dict)."""
    if isinstance(outputs, dict):
        outputs = [outputs.get("score"), outputs.get("logits")]
    if not isinstance(outputs, (tuple, list)) or len(outputs) < 2:
        raise ArtifactError(f"{source}: not a TIGAS scorer (expected outputs score and logits)")
    score, logits = (
        torch.as_tensor(np.asarray(o)) if not isinstance(o, torch.Tensor) else o for o in outputs[:2]
    )
    if score.dim() == 1:
        score = score[:, None]
    if score.shape[1:] != (1,) or logits.shape[1:] != (2,) or len(score) != len(logits):
        raise ArtifactError(
            f"{source}: not a TIGAS scorer (outputs of shapes "
            f"{list(score.shape)} and {list(logits.shape)}, expected [B, 1] and "
            f"[B, 2])"
        )
    return score.float(), logits.float()


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
        return {
            "scores": [{"path": s.path, "score": s.score, "logits": list(s.logits)} for s in self.scores],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }

    def render(self, fmt: str = "table", threshold: float = 0.5) -> str:
        """The scores as ``"table"`` (score, verdict at ``threshold``, path), ``"csv"`` (path,
        score, logit_generated, logit_real) or ``"json"`` (:meth:`as_dict`)."""
        if fmt == "json":
            return json.dumps(self.as_dict(), indent=2)
        return "\n".join([render_heading(fmt), *render_rows(self.scores, fmt, threshold)])


def render_heading(fmt: str) -> str:
    """The first line of :meth:`ScoreReport.render` in ``"table"`` or ``"csv"``."""
    return "path,score,logit_generated,logit_real" if fmt == "csv" else f"{'score':>8}  {'verdict':<9}  path"


def render_rows(scores: Sequence[ImageScore], fmt: str, threshold: float = 0.5) -> List[str]:
    """The lines of ``scores`` in :meth:`ScoreReport.render`'s ``"table"`` or ``"csv"``, so that
    a long run can print them batch by batch."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for item in scores:
            writer.writerow(
                [item.path, f"{item.score:.6f}", f"{item.logits[0]:.6f}", f"{item.logits[1]:.6f}"]
            )
        return out.getvalue().splitlines() if scores else []
    return [
        f"{item.score:8.4f}  {'real' if item.score >= threshold else 'generated':<9}  {item.path}"
        for item in scores
    ]


def score_paths(
    runner: Runner, paths: Sequence[PathLike], batch_size: int = 32, progress: bool = False
) -> ScoreReport:
    """Score image files and directories (recursive) with ``runner``.

    Files named in ``paths`` must be readable images (:class:`~lossport.errors.ImageError`
    otherwise); unreadable or non-image files found in directories are skipped and listed in
    the report. ``progress`` shows a progress bar on stderr.
    """
    sources, skipped = collect_sources(paths)
    return score_sources(runner, sources, skipped, batch_size, progress)


def score_sources(
    runner: Runner,
    sources: Sequence[ImageSource],
    skipped: List[Skipped],
    batch_size: int = 32,
    progress: bool = False,
    workers: int = 0,
) -> ScoreReport:
    """:func:`score_paths` on sources already collected with
    :func:`~lossport.io.images.collect_sources` (so that paths are checked before a model is
    loaded or downloaded); ``workers`` as in :func:`iter_scores`."""
    report = ScoreReport(skipped=skipped)
    for scores in iter_scores(runner, sources, skipped, batch_size, progress, workers):
        report.scores.extend(scores)
    return report


def iter_scores(
    runner: Runner,
    sources: Sequence[ImageSource],
    skipped: List[Skipped],
    batch_size: int = 32,
    progress: bool = False,
    workers: int = 0,
    prefetch: int = 2,
) -> Iterator[List[ImageScore]]:
    """The scores of ``sources``, one list per batch, as inference finishes each.

    ``workers`` threads decode and resize up to ``prefetch`` batches ahead while ``runner``
    infers (``0``: one image after the other, in this thread); memory stays bounded by
    ``batch_size * prefetch`` images whatever the number of sources. Unreadable found files
    are appended to ``skipped`` as they turn up; an unreadable explicit one raises
    :class:`~lossport.errors.ImageError` when its turn comes.
    """
    batches = load_batches(sources, runner.preprocess.size, batch_size, skipped, workers, prefetch)
    bar = tqdm(total=len(sources), unit="img", file=sys.stderr, disable=not progress, leave=False)
    with closing(batches), bar:
        done = len(skipped)
        for names, batch in batches:
            score, logits = runner.predict(batch)
            yield [
                ImageScore(name, value, (pair[0], pair[1]))
                for name, value, pair in zip(names, score[:, 0].tolist(), logits.tolist())
            ]
            bar.update(len(names) + len(skipped) - done)
            done = len(skipped)
