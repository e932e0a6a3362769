"""Fixtures injecting faults (see validation_faults.py)."""

from __future__ import annotations

import onnxruntime
import pytest
import torch
from validation_faults import WrongKernelSession, erf_spec, tanh_for, wrong_translation

from lossport import catalog
from lossport.export.onnx import translate


@pytest.fixture
def erf_sum():
    """The ``erf_sum`` spec, registered for one test."""
    spec = erf_spec()
    with catalog.registered(spec):
        yield spec


@pytest.fixture
def erf_sum_float32():
    """``erf_sum`` compared in float32 (as a spec that cannot run in float64 is)."""
    spec = erf_spec(float64=False)
    with catalog.registered(spec):
        yield spec


@pytest.fixture
def wrong_erf(monkeypatch):
    """Export faults: aten.erf translated as Tanh (close in shape, wrong numbers)."""
    monkeypatch.setattr(translate, "op_translations", wrong_translation(torch.ops.aten.erf.default, tanh_for))


@pytest.fixture
def wrong_ort_erf(monkeypatch):
    """A runtime-only fault: ORT's Erf kernel computes tanh."""
    monkeypatch.setattr(onnxruntime, "InferenceSession", WrongKernelSession)
