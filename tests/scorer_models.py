"""Stand-in exported scorers for the scoring tests (tiny ONNX graphs, instant to run)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper


def mean_scorer_onnx(path: Path, contract=None) -> Path:
    """A stand-in exported scorer: score = mean of its input, logits = [1 - score, score]."""
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])
    constants = [
        helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images", "axes"], ["mean"], keepdims=1),
        helper.make_node("Reshape", ["mean", "shape"], ["score"]),
        helper.make_node("Sub", ["one", "score"], ["fake"]),
        helper.make_node("Concat", ["fake", "score"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(nodes, "mean_scorer", [image], [score, logits], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if contract is not None:
        helper.set_model_props(model, {"lossport.preprocess": json.dumps(contract)})
    onnx.save(model, str(path))
    return path
