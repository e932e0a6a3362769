"""``TIGAS``: the upstream scorer API (tensors, paths, PIL images, lists, directories).

Differences from upstream, on purpose: on tensors that require grad (with grad mode on) the
scorer is differentiable, so ``1 - tigas(fake).mean()`` trains a generator, as upstream's docs
promise but its ``no_grad`` code does not deliver; a checkpoint that does not fit raises
instead of leaving random weights; unreadable files in a directory are skipped with a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch
from PIL import Image

from lossport.errors import CheckpointError, ConfigError, InvalidInputError
from lossport.io.images import image_to_tensor, load_image
from lossport.models.tigas.checkpoint import read_checkpoint
from lossport.models.tigas.hub import download_checkpoint
from lossport.models.tigas.model import MIN_SIDE, TIGASModel, check_images
from lossport.models.tigas.scoring import Prediction, score_paths
from lossport.spec.limits import MAX_IMAGE_SIDE
from lossport.spec.preprocess import Preprocess

PathLike = Union[str, Path]
ImageInput = Union[torch.Tensor, PathLike, Image.Image]


class TIGAS:
    """Score images for authenticity: 1 = natural/real, 0 = generated.

    Args:
        checkpoint: checkpoint file (any format of :mod:`.checkpoint`). ``None``: the
            published weights from the hub when ``auto_download`` (needs ``huggingface_hub``
            and the network or a cached copy), else an error.
        img_size: side paths and PIL images are resized to; ``None``: the checkpoint's
            recorded training size, else 256. Tensors are never resized.
        device: torch device (default: CUDA when available, else CPU).
        auto_download: allow fetching the hub weights when ``checkpoint`` is ``None``.
        checkpoint_path: upstream's name for ``checkpoint``.
        num_attention_heads: heads of full-mode attention (not inferable from a file; no
            effect on the numbers).
        input_range: range the model expects, ``"[0,1]"`` (upstream head) or ``"[-1,1]"``.
        trust_checkpoint: allow checkpoints that need arbitrary unpickling.

    Calling ``tigas(x)`` returns scores ``[B, 1]`` (with ``return_logits=True`` also the
    logits ``[B, 2]``) for ``x``: a tensor ``[B, 3, H, W]`` or ``[3, H, W]`` in the model's
    input range (``H, W >= 32``), an image path, a PIL image, a list of those (tensors in a
    list must share one size), or a directory (see :meth:`compute_directory`).
    """

    def __init__(
        self,
        checkpoint: Optional[PathLike] = None,
        img_size: Optional[int] = None,
        device: Optional[Union[str, torch.device]] = None,
        auto_download: bool = True,
        *,
        checkpoint_path: Optional[PathLike] = None,
        num_attention_heads: int = 8,
        input_range: str = "[0,1]",
        trust_checkpoint: bool = False,
    ) -> None:
        if checkpoint is not None and checkpoint_path is not None:
            raise ConfigError("give checkpoint or checkpoint_path, not both")
        checkpoint = checkpoint if checkpoint is not None else checkpoint_path
        if checkpoint is None:
            if not auto_download:
                raise CheckpointError(
                    "no checkpoint given and auto_download=False: pass "
                    "checkpoint=FILE, or allow the hub download"
                )
            checkpoint = download_checkpoint()
        loaded = read_checkpoint(checkpoint, trust_checkpoint)
        model = loaded.build(num_attention_heads, input_range)
        self._setup(model, img_size if img_size is not None else loaded.img_size or 256, device)

    @classmethod
    def from_model(
        cls,
        model: TIGASModel,
        img_size: Optional[int] = None,
        device: Optional[Union[str, torch.device]] = None,
    ) -> "TIGAS":
        """Wrap an existing model (e.g. one built from a config with random weights)."""
        scorer = cls.__new__(cls)
        scorer._setup(model, img_size if img_size is not None else model.config["img_size"], device)
        return scorer

    def _setup(self, model: TIGASModel, img_size: int, device: Optional[Union[str, torch.device]]) -> None:
        if not MIN_SIDE <= img_size <= MAX_IMAGE_SIDE:
            raise ConfigError(f"img_size must be from {MIN_SIDE} to {MAX_IMAGE_SIDE}, got {img_size}")
        self.device = _device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.img_size = img_size
        self.preprocess = Preprocess.default(img_size, model.config["input_range"])

    # -- runner protocol (used by score_paths and the CLI) ----------------------------------
    def predict(self, images: torch.Tensor) -> Prediction:
        """``[B, 3, H, W]`` RGB in ``[0, 1]`` -> ``(score [B, 1], logits [B, 2])``, no grad."""
        with torch.no_grad():
            return self.model(self.preprocess.apply(images).to(self.device))

    # -- upstream API -------------------------------------------------------------------
    def __call__(
        self, images: Union[ImageInput, List[ImageInput]], return_logits: bool = False, batch_size: int = 32
    ) -> Union[torch.Tensor, Prediction]:
        if isinstance(images, (str, Path)) and Path(images).is_dir():
            score, logits, _ = self._score_directory(images, batch_size)
        elif isinstance(images, torch.Tensor):
            score, logits = self._score_tensor(images)
        else:
            items = list(images) if isinstance(images, (list, tuple)) else [images]
            if not items:
                raise InvalidInputError("images is an empty list")
            outputs = [
                self._score_tensor(torch.stack(chunk))
                for chunk in _chunks([self._to_tensor(item) for item in items], batch_size)
            ]
            score = torch.cat([o[0] for o in outputs])
            logits = torch.cat([o[1] for o in outputs])
        return (score, logits) if return_logits else score

    def compute_directory(
        self, directory: PathLike, return_paths: bool = False, batch_size: int = 32
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, List[str]]]:
        """Scores ``[N, 1]`` of the images under ``directory`` (recursive *.jpg, *.jpeg,
        *.png, *.bmp, sorted by path), optionally with their paths. Unreadable files are
        skipped with a warning."""
        if not Path(directory).is_dir():
            raise InvalidInputError(f"{directory}: not a directory")
        score, _, paths = self._score_directory(directory, batch_size)
        return (score, paths) if return_paths else score

    # -- internals ----------------------------------------------------------------------
    def _score_tensor(self, images: torch.Tensor) -> Prediction:
        if isinstance(images, torch.Tensor) and images.dim() == 3:
            images = images.unsqueeze(0)
        check_images(images)
        images = images.to(device=self.device, dtype=next(self.model.parameters()).dtype)
        if images.requires_grad and torch.is_grad_enabled():
            return self.model(images)
        with torch.no_grad():
            return self.model(images)

    def _to_tensor(self, item: ImageInput) -> torch.Tensor:
        """One list element -> ``[3, H, W]`` in the model's input range."""
        if isinstance(item, torch.Tensor):
            if item.dim() != 3:
                raise InvalidInputError(f"tensors in a list must be [3, H, W], got shape {list(item.shape)}")
            return item
        size = (self.img_size, self.img_size)
        if isinstance(item, Image.Image):
            pixels = image_to_tensor(item, size)
        elif isinstance(item, (str, Path)):
            pixels = load_image(item, size)
        else:
            raise InvalidInputError(
                f"cannot score a {type(item).__name__}: give a tensor, an "
                f"image path, a PIL image, a list of those or a directory"
            )
        return self.preprocess.apply(pixels[None])[0]

    def _score_directory(
        self, directory: PathLike, batch_size: int
    ) -> Tuple[torch.Tensor, torch.Tensor, List[str]]:
        report = score_paths(self, [directory], batch_size)
        if report.skipped:
            shown = "; ".join(f"{s.path} ({s.reason})" for s in report.skipped[:3])
            more = f" and {len(report.skipped) - 3} more" if len(report.skipped) > 3 else ""
            warnings.warn(
                f"skipped {len(report.skipped)} file(s) under {directory}: {shown}{more}", stacklevel=3
            )
        score = torch.tensor([[r.score] for r in report.scores]).reshape(-1, 1)
        logits = torch.tensor([list(r.logits) for r in report.scores]).reshape(-1, 2)
        return score, logits, [r.path for r in report.scores]


def _chunks(items: List[torch.Tensor], size: int) -> List[List[torch.Tensor]]:
    if size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {size}")
    shapes = {tuple(t.shape) for t in items}
    if len(shapes) > 1:
        raise InvalidInputError(f"images in a list must share one size to be batched, got {sorted(shapes)}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _device(device: Optional[Union[str, torch.device]]) -> torch.device:
    """``device`` checked: a valid torch device that exists here (default: CUDA if available)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and (
        not torch.cuda.is_available() or (chosen.index or 0) >= torch.cuda.device_count()
    ):
        raise ConfigError(f"device {device!r}: no such CUDA device here; use cpu")
    if chosen.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: only cpu and cuda are supported")
    return chosen
