"""Scoring a `Ray Data <https://docs.ray.io/en/latest/data/data.html>`_ dataset with an exported
scorer (``pip install 'lossport[ray]'``).

:func:`score_dataset` maps a dataset of images to their scores with ``map_batches`` and
:class:`ArtifactPredictor`, a callable class: each Ray actor opens one ONNX Runtime session
(or TorchScript module) of the artifact and scores batch after batch. Images are decoded and
resized exactly as ``lossport score`` does (:mod:`lossport.io.images`, the artifact's
preprocessing contract), so the scores are the same.

Input rows: ``path`` (a file every worker can read) or, from
``ray.data.read_binary_files(..., include_paths=True)``, ``bytes`` and ``path``. Output rows:
``path``, ``score`` (1 = real), ``logit_generated``, ``logit_real`` (float32) and ``error``
(``""``, or why the image could not be read, its scores then NaN).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from lossport.errors import ConfigError, ImageError
from lossport.io.images import collect_sources, image_to_tensor, open_image
from lossport.scoring import ArtifactScorer

PathLike = Union[str, Path]
OUTPUT_COLUMNS = ("path", "score", "logit_generated", "logit_real", "error")


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("the Ray integration needs Ray Data: pip install 'lossport[ray]'") from None
    return ray


class ArtifactPredictor:
    """One scorer per Ray actor, for ``Dataset.map_batches``: a batch ``{"path": [n] str,
    "bytes": [n] (optional)}`` of numpy columns -> ``{"path", "score", "logit_generated",
    "logit_real", "error"}`` (see the module docstring).

    ``model``: the artifact's bytes (shipped to every actor, so no shared file system is needed
    for it) or a path every worker can read; ``threads``: ONNX Runtime's intra-op threads.
    """

    def __init__(self, model: Union[bytes, PathLike], threads: Optional[int] = None) -> None:
        self._folder = None
        if isinstance(model, bytes):
            self._folder = tempfile.TemporaryDirectory(prefix="lossport-ray-")
            path = Path(self._folder.name) / "model.onnx"
            path.write_bytes(model)
            model = path
        self.scorer = ArtifactScorer(model, threads)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        contents = batch.get("bytes")
        images: List[torch.Tensor] = []
        errors: List[str] = []
        for index, path in enumerate(paths):
            try:
                image = open_image(path) if contents is None else _open_bytes(contents[index], path)
                images.append(image_to_tensor(image, self.scorer.preprocess.size))
                errors.append("")
            except ImageError as exc:
                errors.append(str(exc).split(": ", 1)[-1])
        scores = np.full((len(paths), 3), np.nan, dtype=np.float32)
        readable = [i for i, error in enumerate(errors) if not error]
        if images:
            score, logits = self.scorer.predict(torch.stack(images))
            scores[readable] = torch.cat([score, logits], dim=1).numpy()
        return {
            "path": np.asarray(paths, dtype=object),
            "score": scores[:, 0],
            "logit_generated": scores[:, 1],
            "logit_real": scores[:, 2],
            "error": np.asarray(errors, dtype=object),
        }


def _open_bytes(content: Any, path: str) -> Image.Image:
    """A file's bytes as a decoded image, with :func:`open_image`'s errors."""
    try:
        with Image.open(io.BytesIO(bytes(content))) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None


def image_dataset(paths: Sequence[PathLike]) -> Any:
    """A Ray dataset with one row ``{"path": str}`` per image file in ``paths`` (files, and
    folders scanned recursively as ``lossport score`` does)."""
    ray = _ray()
    sources, _ = collect_sources(paths)
    return ray.data.from_items([{"path": str(s.path)} for s in sources])


def score_dataset(
    dataset: Any,
    model: PathLike,
    *,
    batch_size: int = 32,
    concurrency: int = 1,
    threads: Optional[int] = None,
) -> Any:
    """``dataset`` (rows with ``path``, and optionally ``bytes``) -> a lazy dataset of scores
    (module docstring), computed by ``concurrency`` actors, each with one session of ``model``
    using ``threads`` intra-op threads (and reserving as many CPUs)."""
    ray = _ray()
    if not Path(model).is_file():
        raise ConfigError(f"{model}: no such model file")
    ArtifactScorer(model, threads)  # a bad artifact fails here, once, not in every actor
    return dataset.map_batches(
        ArtifactPredictor,
        fn_constructor_kwargs={"model": Path(model).read_bytes(), "threads": threads},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=threads or 1,
    )
