"""Reduced-precision ONNX artifacts: the written float32 graph rewritten as float16 or int8.

Both start from the float32 graph after ONNX Runtime's *basic* offline optimizations
(``quant_pre_process``: constant folding, Conv + Mul/Add fusions, shape inference; standard
ONNX ops only, so the graph stays portable), so that folded constants (e.g. a batch norm
decomposed into Mul/Add) are computed in float32 before anything is rounded.

- ``fp16``: ``onnxruntime.transformers.float16.convert_float_to_float16`` with float32 inputs
  and outputs kept (``keep_io_types``): callers feed and read float32, the graph runs in
  float16 (the GPU target). Ops of :data:`FP16_BLOCKED` stay float32 (ONNX Runtime has no
  float16 kernel for them, or float16 loses what they compute). ONNX Runtime on the CPU runs
  such a graph too, computing float16 ops that lack a CPU kernel in float32 behind inserted
  casts: on the CPU it is checked, not fast.
- ``int8``: static QDQ quantization (``quantize_static``): uint8 activations (asymmetric,
  min/max calibrated on a :class:`~lossport.export.calibration.CalibrationSet`), int8 weights
  per output channel, for the ops of :data:`QUANTIZED_OPS` (everything else, e.g. the head's
  linear layers, layer norm, sigmoid and the reductions, stays float32 after
  DequantizeLinear). ONNX Runtime fuses the QDQ pairs into integer kernels (VNNI / AMX on
  x86).

The rewritten model keeps every ``metadata_props`` entry of the float32 one and passes a full
``onnx.checker`` pass.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import logging
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import onnx

from lossport.errors import ExportError
from lossport.export.calibration import CalibrationSet

PRECISIONS = ("fp32", "fp16", "int8")
# float32 in fp16 graphs: onnxruntime's own list (no float16 kernels), nothing added: every op
# the exported graphs use has a float16 kernel on CUDA, and the check judges the numbers
FP16_BLOCKED: tuple = ()
# convolutions only: they hold nearly all the FLOPs; quantizing the head's Gemm/MatMul too (a
# few kFLOPs) moved the trained scorer's scores by up to 0.42 and flipped 57% of its decisions
# on the image set's eval split, against 0.066 and none with convolutions alone
QUANTIZED_OPS = ("Conv",)
# calibration outputs kept in memory before min/max are merged (bounds the calibration's memory)
MAX_INTERMEDIATE_BATCHES = 2


def convert_precision(path: Path, precision: str, calibration: Optional[CalibrationSet] = None) -> str:
    """Rewrite the float32 ONNX file ``path`` in place as ``precision``; returns a note (empty
    when there is nothing to say). ``calibration``: the images of an int8 conversion."""
    if precision == "fp32":
        return ""
    if precision not in PRECISIONS:
        raise ExportError(f"an ONNX artifact cannot be {precision}; use {', '.join(PRECISIONS)}")
    source = onnx.load(str(path))
    props = {p.key: p.value for p in source.metadata_props}
    opsets = {o.domain: o.version for o in source.opset_import}
    with tempfile.TemporaryDirectory(prefix="lossport-precision-") as folder:
        optimized = Path(folder) / "optimized.onnx"
        with _quiet():
            from onnxruntime.quantization.shape_inference import quant_pre_process

            # symbolic shape inference is skipped: it cannot read every Constant form the
            # exporter writes; ONNX's shape inference still runs
            quant_pre_process(str(path), str(optimized), skip_symbolic_shape=True)
        if precision == "fp16":
            model = _float16(onnx.load(str(optimized)))
            note = ""
        else:
            if calibration is None:
                raise ExportError("an int8 export needs a calibration set")
            model = _int8(optimized, Path(folder) / "int8.onnx", calibration)
            note = (
                f"int8 calibrated on {len(calibration.paths)} "
                f"{'built-in' if calibration.builtin else '--calibrate'} image(s)"
            )
    _restore(model, props, opsets)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return note


def _float16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    with _quiet():
        converted = convert_float_to_float16(
            model, keep_io_types=True, op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(FP16_BLOCKED)
        )
    _sort_nodes(converted.graph)  # the converter appends its input casts after their users
    return converted


def _sort_nodes(graph: onnx.GraphProto) -> None:
    """Order ``graph``'s nodes topologically (Kahn's algorithm, the earliest given node first
    among the ready ones); nodes whose inputs never become available keep their order at the
    end, for the checker to name."""
    nodes = list(graph.node)
    produced = {name for node in nodes for name in node.output}
    waiting = [{name for name in node.input if name in produced} for node in nodes]
    consumers: Dict[str, list] = {}
    for index, names in enumerate(waiting):
        for name in names:
            consumers.setdefault(name, []).append(index)
    ready = [index for index, names in enumerate(waiting) if not names]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for name in nodes[index].output:
            for consumer in consumers.pop(name, []):
                waiting[consumer].discard(name)
                if not waiting[consumer]:
                    heapq.heappush(ready, consumer)
    placed = set(order)
    order += [index for index in range(len(nodes)) if index not in placed]
    copies = [onnx.NodeProto() for _ in order]
    for copy, index in zip(copies, order):
        copy.CopyFrom(nodes[index])
    del graph.node[:]
    graph.node.extend(copies)


def _int8(source: Path, target: Path, calibration: CalibrationSet) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        """The calibration set's batches, as feeds of the model's image input."""

        def __init__(self) -> None:
            self.batches: Iterator[Any] = calibration.batches()

        def get_next(self) -> Optional[Dict[str, Any]]:
            batch = next(self.batches, None)
            return None if batch is None else {calibration.input_name: batch}

    with _quiet():
        quantize_static(
            str(source),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            extra_options={"CalibMaxIntermediateOutputs": MAX_INTERMEDIATE_BATCHES},
        )
    return onnx.load(str(target))


def _restore(model: onnx.ModelProto, props: Dict[str, str], opsets: Dict[str, int]) -> None:
    """The float32 model's metadata and default-domain opset on the rewritten ``model``."""
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    written = {o.domain: o.version for o in model.opset_import}
    for domain in ("", "ai.onnx"):
        if domain in opsets and written.get(domain) != opsets[domain]:
            raise ExportError(
                f"the {domain or 'ai.onnx'} opset changed from {opsets[domain]} to "
                f"{written.get(domain)} while rewriting the precision"
            )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime's quantization tools log warnings (per-channel axes of rank-1 weights,
    non-constant Gemm biases) and print progress; keep the CLI output to what lossport says."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
