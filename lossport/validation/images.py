"""``--images DIR``: does an exported scorer rank and judge a folder of real images as the eager
reference does?

Every image under ``DIR`` (recursive, as ``lossport score`` finds them) is scored by the eager
reference (the spec's module in its reference dtype) and by each artifact backend, through the
artifact's preprocessing contract (the same contract for both: this checks the model, not the
image loading). The score of an image is the first output of the spec, one value per image.
With reference scores ``r`` and artifact scores ``a`` over ``n`` images:

- ``max |Δscore| = max_i |a_i - r_i|``;
- Spearman's ``ρ``: Pearson's correlation of the rankings, ties ranked by their average rank;
- Kendall's ``τ_b = (n_c - n_d) / sqrt((n_0 - n_1)(n_0 - n_2))`` over the ``n_0 = n(n-1)/2``
  pairs, ``n_c``/``n_d`` concordant/discordant pairs, ``n_1``/``n_2`` pairs tied in ``r``/``a``;
- flips: images whose decision differs, ``(r_i >= t) != (a_i >= t)`` at the threshold ``t``
  (``lossport score`` calls ``>= t`` real).

``ρ`` and ``τ_b`` are undefined (NaN) where a ranking is constant. ``--min-spearman`` and
``--max-flips`` make them pass criteria (an undefined ``ρ`` does not meet a minimum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from lossport.errors import ConfigError
from lossport.io.batching import load_batches
from lossport.io.images import ImageSource, Skipped, collect_sources
from lossport.spec import Spec
from lossport.spec.preprocess import Preprocess, takes_image_batch
from lossport.validation.backends import Backend

BATCH = 16


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1; tied values share the average of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ``ρ``: Pearson's correlation of the average ranks (NaN where one is constant)."""
    rx, ry = average_ranks(np.asarray(x)), average_ranks(np.asarray(y))
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float(np.sum(dx * dx)) * float(np.sum(dy * dy)))
    return float(np.sum(dx * dy)) / denominator if denominator > 0 else float("nan")


def kendall_tau_b(x: Sequence[float], y: Sequence[float], block: int = 1024) -> float:
    """Kendall's ``τ_b`` (see the module docstring), over every pair in blocks of rows: O(n²)
    time, O(block * n) memory. NaN where one ranking is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(x)
    score = tied_x = tied_y = 0
    for start in range(0, n, block):
        stop = min(n, start + block)
        later = np.arange(n)[None, :] > np.arange(start, stop)[:, None]  # pairs i < j
        sx = np.sign(x[start:stop, None] - x[None, :])
        sy = np.sign(y[start:stop, None] - y[None, :])
        score += int(np.sum((sx * sy)[later]))
        tied_x += int(np.sum((sx == 0) & later))
        tied_y += int(np.sum((sy == 0) & later))
    pairs = n * (n - 1) // 2
    denominator = math.sqrt(float(pairs - tied_x) * float(pairs - tied_y))
    return score / denominator if denominator > 0 else float("nan")


@dataclass
class ImageAgreement:
    """One artifact backend against the eager reference on an image folder (module docstring).
    ``failures``: the pass criteria it does not meet."""

    backend: str
    threshold: float
    paths: List[str]
    reference: List[float]
    scores: List[float]
    max_delta: float
    spearman: float
    kendall: float
    flips: int
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        return (
            f"{len(self.paths)} images, max |Δscore| {self.max_delta:.3g}, Spearman {self.spearman:.4f}, "
            f"Kendall {self.kendall:.4f}, {self.flips} decision(s) flipped at {self.threshold:g}"
            + (f" ({len(self.skipped)} file(s) skipped)" if self.skipped else "")
        )

    def to_json(self) -> Dict[str, Any]:
        return {
            "backend": self.backend,
            "images": len(self.paths),
            "threshold": self.threshold,
            "max_abs_delta": self.max_delta,
            "spearman": None if math.isnan(self.spearman) else self.spearman,
            "kendall_tau_b": None if math.isnan(self.kendall) else self.kendall,
            "flips": self.flips,
            "passed": self.passed,
            "failures": self.failures,
            "scores": [
                {"path": p, "reference": r, "artifact": a}
                for p, r, a in zip(self.paths, self.reference, self.scores)
            ],
            "skipped": [{"path": p, "reason": why} for p, why in self.skipped],
        }


@dataclass(frozen=True)
class ImageCriteria:
    """The folder, the decision threshold and the pass criteria (``None``: not a criterion)."""

    folder: Path
    threshold: float = 0.5
    min_spearman: Optional[float] = None
    max_flips: Optional[int] = None

    def check(self) -> None:
        """ConfigError for bad values or a folder with fewer than two images."""
        if not math.isfinite(self.threshold):
            raise ConfigError(f"--threshold {self.threshold}: must be a finite number")
        if self.min_spearman is not None and not -1.0 <= self.min_spearman <= 1.0:
            raise ConfigError(f"--min-spearman {self.min_spearman}: must be from -1 to 1")
        if self.max_flips is not None and self.max_flips < 0:
            raise ConfigError(f"--max-flips {self.max_flips}: must be >= 0")
        if not Path(self.folder).is_dir():
            raise ConfigError(f"--images {self.folder}: no such folder")
        sources, _ = collect_sources([self.folder])
        if len(sources) < 2:
            raise ConfigError(
                f"--images {self.folder}: found {len(sources)} image file(s); rankings need at least 2"
            )


def check_scorer(spec: Spec) -> None:
    """ConfigError unless ``spec`` is an image scorer: one input ``[batch, 3, height, width]``."""
    shapes = [t.shape for t in spec.inputs]
    if not takes_image_batch(spec.inputs):
        raise ConfigError(
            f"--images needs an image scorer (one input [batch, 3, height, width], its first "
            f"output one score per image); {spec.name} takes {', '.join(t.name for t in spec.inputs)} "
            f"of shapes {[list(s) for s in shapes]}"
        )


def score_images(
    backend: Backend,
    spec: Spec,
    preprocess: Preprocess,
    sources: Sequence[ImageSource],
    skipped: List[Skipped],
) -> Tuple[List[str], np.ndarray]:
    """``(paths, scores)``: the first output of ``spec``, one value per readable image."""
    paths: List[str] = []
    scores: List[np.ndarray] = []
    for names, images in load_batches(sources, preprocess.size, BATCH, skipped):
        outputs = backend.run((preprocess.apply(images).to(torch.float32),))
        score = np.asarray(outputs[spec.outputs[0]], dtype=np.float64).reshape(len(names), -1)
        if score.shape[1] != 1:
            raise ConfigError(
                f"--images: {spec.name}'s first output {spec.outputs[0]!r} has {score.shape[1]} values "
                f"per image, not one score"
            )
        paths += names
        scores.append(score[:, 0])
    return paths, np.concatenate(scores) if scores else np.zeros(0)


def agreement(
    backend: str, paths: List[str], reference: np.ndarray, scores: np.ndarray, criteria: ImageCriteria
) -> ImageAgreement:
    """The numbers of the module docstring, and the criteria not met."""
    t = criteria.threshold
    rho, tau = spearman(reference, scores), kendall_tau_b(reference, scores)
    flips = int(np.sum((reference >= t) != (scores >= t)))
    failures = []
    if criteria.min_spearman is not None and not rho >= criteria.min_spearman:
        failures.append(f"Spearman {rho:.4f} below --min-spearman {criteria.min_spearman:g}")
    if criteria.max_flips is not None and flips > criteria.max_flips:
        failures.append(f"{flips} decision(s) flipped at {t:g}, more than --max-flips {criteria.max_flips}")
    return ImageAgreement(
        backend,
        t,
        list(paths),
        [float(v) for v in reference],
        [float(v) for v in scores],
        float(np.max(np.abs(scores - reference))) if len(paths) else 0.0,
        rho,
        tau,
        flips,
        failures=failures,
    )


def image_agreements(
    spec: Spec,
    reference: Backend,
    backends: Sequence[Backend],
    preprocess: Preprocess,
    criteria: ImageCriteria,
) -> List[ImageAgreement]:
    """Each of ``backends`` against ``reference`` on the folder of ``criteria``."""
    sources, skipped = collect_sources([criteria.folder])
    paths, expected = score_images(reference, spec, preprocess, sources, skipped)
    results = []
    for backend in backends:
        _, scores = score_images(backend, spec, preprocess, sources, [])
        result = agreement(backend.name, paths, expected, scores, criteria)
        result.skipped = [(s.path, s.reason) for s in skipped]
        results.append(result)
    return results
