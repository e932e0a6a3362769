"""The one module of private torch imports: its version gate and its flag context manager."""

from __future__ import annotations

import pytest
import torch

from lossport.errors import ExportError
from lossport.export.onnx import torch_internals


@pytest.mark.parametrize("version", ["2.9.0", "2.11.0+cu130", "2.13.0", "2.13.1+cpu"])
def test_tested_versions_pass(version):
    torch_internals.check_torch_version(version)


@pytest.mark.parametrize("version", ["2.8.1", "2.14.0", "3.0.0", "2.14.0.dev20260101"])
def test_untested_versions_are_one_clear_error(version):
    with pytest.raises(ExportError, match=rf"this is torch {version}; install a torch in that range"):
        torch_internals.check_torch_version(version)


def test_compiling_flag_is_set_inside_and_restored_after():
    before = torch.compiler.is_compiling()
    with torch_internals.compiling_flag():
        assert torch.compiler.is_compiling()
    assert torch.compiler.is_compiling() == before


def test_compiling_flag_is_restored_after_an_error():
    before = torch.compiler.is_compiling()
    with pytest.raises(RuntimeError, match="boom"), torch_internals.compiling_flag():
        raise RuntimeError("boom")
    assert torch.compiler.is_compiling() == before
