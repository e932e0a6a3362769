"""The preprocessing contract of an exported image model, stored with the artifact.

Exported scorers carry, under the metadata key ``lossport.spec.preprocess`` (ONNX
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
from dataclasses import dataclass
from typing import Any, Sequence, Tuple

import torch

from lossport.errors import ArtifactError, ConfigError
from lossport.spec.limits import MAX_IMAGE_SIDE

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
        if len(self.size) != 2 or not all(type(s) is int and 1 <= s <= MAX_IMAGE_SIDE for s in self.size):
            raise ConfigError(
                f"image size must be [height, width], each from 1 to "
                f"{MAX_IMAGE_SIDE} pixels, got {list(self.size)}"
            )
        for value, allowed, name in (
            (self.range, RANGES, "range"),
            (self.channel_order, CHANNEL_ORDERS, "channel_order"),
            (self.layout, LAYOUTS, "layout"),
        ):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    @staticmethod
    def default(img_size: int = 256, value_range: str = "[0,1]") -> "Preprocess":
        return Preprocess(size=(img_size, img_size), range=value_range)

    def to_json(self) -> str:
        return json.dumps(
            {
                "size": list(self.size),
                "range": self.range,
                "channel_order": self.channel_order,
                "layout": self.layout,
            }
        )

    @staticmethod
    def from_json(text: str, source: str = "metadata") -> "Preprocess":
        """Parse the JSON form; :class:`ArtifactError` names ``source`` when it is invalid."""
        try:
            data = json.loads(text)
            size = data["size"]
            if not isinstance(size, list) or len(size) != 2:
                raise ValueError("size must be [height, width]")
            return Preprocess(
                size=(size[0], size[1]),
                range=data.get("range", "[0,1]"),
                channel_order=data.get("channel_order", "RGB"),
                layout=data.get("layout", "NCHW"),
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise ArtifactError(f"{source}: invalid {METADATA_KEY} metadata {shown!r} ({exc})") from None

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB in ``[0, 1]`` (already resized) -> the model's input."""
        if self.range == "[-1,1]":
            images = images * 2.0 - 1.0
        if self.channel_order == "BGR":
            images = images.flip(1)
        if self.layout == "NHWC":
            images = images.permute(0, 2, 3, 1)
        return images.contiguous()


def takes_image_batch(inputs: Sequence[Any]) -> bool:
    """Whether a spec's ``inputs`` (:class:`~lossport.spec.TensorSpec` s) are one image batch
    ``[batch, 3, height, width]``: what an image scorer takes (``--images``) and what int8
    calibration feeds."""
    return len(inputs) == 1 and len(inputs[0].shape) == 4 and inputs[0].shape[1] == 3
