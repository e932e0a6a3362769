"""The preprocessing contract of an exported image model, stored with the artifact.

Exported scorers carry, under the metadata key ``lossport.preprocess`` (ONNX
``metadata_props``, TorchScript extra file), a JSON object telling any runtime how to turn an
image file into the model's input::

    {"size": [H, W], "range": "[0,1]", "channel_order": "RGB", "layout": "NCHW"}

``size``: resize target (bilinear); ``range``: the value range the model expects, ``"[0,1]"``
(pixel / 255) or ``"[-1,1]"`` (2 * pixel / 255 - 1); ``channel_order`` RGB or BGR; ``layout``
NCHW or NHWC. Without the key, consumers assume ``Preprocess.default()`` (TIGAS's 256x256
``[0,1]`` RGB NCHW).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple, Union

import torch

from lossport.errors import ArtifactError

METADATA_KEY = "lossport.preprocess"
RANGES = ("[0,1]", "[-1,1]")
CHANNEL_ORDERS = ("RGB", "BGR")
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class Preprocess:
    """How images become model input (see the module docstring)."""

    size: Tuple[int, int]
    range: str = "[0,1]"
    channel_order: str = "RGB"
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        if len(self.size) != 2 or any(int(s) < 1 for s in self.size):
            raise ValueError(f"size must be [height, width] of positive ints, got {self.size}")
        for value, allowed, name in ((self.range, RANGES, "range"),
                                     (self.channel_order, CHANNEL_ORDERS, "channel_order"),
                                     (self.layout, LAYOUTS, "layout")):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    @staticmethod
    def default(img_size: int = 256, value_range: str = "[0,1]") -> "Preprocess":
        return Preprocess(size=(img_size, img_size), range=value_range)

    def to_json(self) -> str:
        return json.dumps({"size": list(self.size), "range": self.range,
                           "channel_order": self.channel_order, "layout": self.layout})

    @staticmethod
    def from_json(text: str, source: str = "metadata") -> "Preprocess":
        """Parse the JSON form; :class:`ArtifactError` names ``source`` when it is invalid."""
        try:
            data = json.loads(text)
            size = data["size"]
            return Preprocess(size=(int(size[0]), int(size[1])),
                              range=data.get("range", "[0,1]"),
                              channel_order=data.get("channel_order", "RGB"),
                              layout=data.get("layout", "NCHW"))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ArtifactError(f"{source}: invalid {METADATA_KEY} metadata {text!r} "
                                f"({exc})") from None

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB in ``[0, 1]`` (already resized) -> the model's input."""
        if self.range == "[-1,1]":
            images = images * 2.0 - 1.0
        if self.channel_order == "BGR":
            images = images.flip(1)
        if self.layout == "NHWC":
            images = images.permute(0, 2, 3, 1)
        return images.contiguous()


def preprocess_from_metadata(metadata: Mapping[str, str], source: str) -> Optional[Preprocess]:
    """The contract in a metadata mapping (keys with the ``lossport.`` prefix), or ``None``."""
    text = metadata.get(METADATA_KEY)
    return None if not text else Preprocess.from_json(text, source)


def read_preprocess(path: Union[str, Path]) -> Optional[Preprocess]:
    """The contract stored in an ``.onnx`` file or a TorchScript archive, or ``None``.

    Raises :class:`ArtifactError` when the file is unreadable or the stored value invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(f"/extra/{METADATA_KEY}")]
                text = archive.read(names[0]).decode("utf-8") if names else ""
        except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{path}: not a readable TorchScript archive ({exc})") from None
        return preprocess_from_metadata({METADATA_KEY: text}, str(path))
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... on junk
        raise ArtifactError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    return preprocess_from_metadata({p.key: p.value for p in model.metadata_props}, str(path))
