"""Value domains of spec inputs: what a valid value is, and how to sample one.

A domain is data attached to a :class:`~lossport.spec.TensorSpec`. It tells
``lossport list`` how to describe an input, and tells the exporter and the validator how to
draw valid random inputs of any shape, deterministically from a ``torch.Generator``.

``sizes`` maps every symbolic dimension name *and* every config key of the spec to its value,
so a domain can refer to either (``ClassIndex("num_classes")`` or ``ClassIndex("classes")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

import torch

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class Domain:
    """Base class: a set of valid values for one input tensor."""

    @property
    def is_float(self) -> bool:
        return True

    def describe(self) -> str:
        raise NotImplementedError

    def sample(
        self, shape: Shape, sizes: Mapping[str, int], generator: torch.Generator, dtype: torch.dtype
    ) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class Real(Domain):
    """Any finite real number; sampled as ``scale * N(0, 1)``."""

    scale: float = 1.0
    meaning: str = "real"

    def describe(self) -> str:
        return self.meaning

    def sample(self, shape, sizes, generator, dtype):
        return torch.randn(shape, generator=generator, dtype=dtype) * self.scale


@dataclass(frozen=True)
class Interval(Domain):
    """Reals in ``[low, high]``; sampled uniformly."""

    low: float = 0.0
    high: float = 1.0
    meaning: str = ""

    def describe(self) -> str:
        span = f"[{self.low:g}, {self.high:g}]"
        return f"{self.meaning} in {span}" if self.meaning else span

    def sample(self, shape, sizes, generator, dtype):
        u = torch.rand(shape, generator=generator, dtype=dtype)
        return self.low + (self.high - self.low) * u


@dataclass(frozen=True)
class Binary(Domain):
    """Floats in ``{0, 1}`` (masks, binary labels); sampled Bernoulli(``p``)."""

    p: float = 0.5

    def describe(self) -> str:
        return "0/1 float"

    def sample(self, shape, sizes, generator, dtype):
        return (torch.rand(shape, generator=generator) < self.p).to(dtype)


@dataclass(frozen=True)
class ClassIndex(Domain):
    """int64 class indices in ``[0, sizes[classes])``, optionally some set to ``ignore_index``.

    ``classes`` names a dimension or config key giving the class count. With ``ignore_index``
    set, about ``ignore_fraction`` of the sampled entries are replaced by it.
    """

    classes: str
    ignore_index: Optional[int] = None
    ignore_fraction: float = 0.15
    low: int = 0

    @property
    def is_float(self) -> bool:
        return False

    def describe(self) -> str:
        text = f"int64 class index in [{self.low}, {self.classes})"
        if self.ignore_index is not None:
            text += f", or {self.ignore_index} = ignored"
        return text

    def sample(self, shape, sizes, generator, dtype):
        index = torch.randint(self.low, int(sizes[self.classes]), shape, generator=generator)
        if self.ignore_index is not None:
            drop = torch.rand(shape, generator=generator) < self.ignore_fraction
            index = torch.where(drop, torch.full_like(index, self.ignore_index), index)
        return index


@dataclass(frozen=True)
class BoxesXYXY(Domain):
    """Boxes ``[..., 4]`` as ``(x1, y1, x2, y2)`` with ``x2 >= x1`` and ``y2 >= y1``.

    Sampled with corners in ``[0, extent)`` and sides in ``[min_side, max_side)``.
    """

    extent: float = 10.0
    min_side: float = 0.5
    max_side: float = 6.0

    def describe(self) -> str:
        return "boxes (x1, y1, x2, y2), x2 >= x1, y2 >= y1"

    def sample(self, shape, sizes, generator, dtype):
        if shape[-1] != 4:
            raise ValueError(f"box tensors end in a dimension of 4, got shape {shape}")
        corner_shape = tuple(shape[:-1]) + (2,)
        corner = torch.rand(corner_shape, generator=generator, dtype=dtype) * self.extent
        side = self.min_side + (self.max_side - self.min_side) * torch.rand(
            corner_shape, generator=generator, dtype=dtype
        )
        return torch.cat([corner, corner + side], dim=-1)


@dataclass(frozen=True)
class Integers(Domain):
    """int64 values in ``[low, high]`` (both included); sampled uniformly."""

    low: int = 0
    high: int = 9

    @property
    def is_float(self) -> bool:
        return False

    def describe(self) -> str:
        return f"int64 in [{self.low}, {self.high}]"

    def sample(self, shape, sizes, generator, dtype):
        return torch.randint(self.low, self.high + 1, shape, generator=generator)
