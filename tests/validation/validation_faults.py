"""Fault injection for the validation tests: a test-only spec (``erf_sum``), op translations that
compute the wrong numbers (export faults), and an ONNX Runtime whose kernel for one op is wrong
(a runtime-only fault: the artifact is right, ORT computes it differently). Fixtures using them
are in this folder's conftest.py."""

from __future__ import annotations

from typing import Callable

import onnx
import onnxruntime
import torch

from lossport.export.onnx.torch_internals import OpTranslations
from lossport.spec import Spec, TensorSpec
from lossport.spec.domains import Real


class ErfSum(torch.nn.Module):
    def forward(self, prediction: torch.Tensor) -> torch.Tensor:
        return torch.special.erf(prediction).sum()


def erf_spec(**changes) -> Spec:
    fields = {
        "name": "erf_sum",
        "build": ErfSum,
        "source": "test",
        "summary": "test-only",
        "inputs": (TensorSpec("prediction", ("batch",), Real(), differentiable=True),),
        "outputs": ("loss",),
        "shapes": ({"batch": 5}, {"batch": 9}),
    }
    fields.update(changes)
    return Spec(**fields)


def wrong_translation(op: torch._ops.OpOverload, replacement: Callable) -> Callable[[int], OpTranslations]:
    """An ``op_translations`` that translates ``op`` with ``replacement`` (an exporter bug)."""

    def translations(opset: int) -> OpTranslations:
        found = OpTranslations.from_torchlib(opset_version=opset)
        found.register_op(op, replacement, is_complex=False)
        return found

    return translations


def tanh_for(x):
    from onnxscript import opset18 as op

    return op.Tanh(x)


class WrongKernelSession(onnxruntime.InferenceSession):
    """ONNX Runtime with a wrong kernel: every ``Erf`` node runs as ``Tanh``. The artifact on
    disk is untouched, so ONNX's reference evaluator still computes it right."""

    def __init__(self, path_or_bytes, *args, **kwargs):
        model = (
            onnx.load_from_string(path_or_bytes)
            if isinstance(path_or_bytes, bytes)
            else onnx.load(str(path_or_bytes))
        )
        for node in model.graph.node:
            if node.op_type == "Erf":
                node.op_type = "Tanh"
        super().__init__(model.SerializeToString(), *args, **kwargs)
