"""Export: a spec (or a prepared module) to a TorchScript or ONNX artifact.

:mod:`.exporter` (the entry point, atomic writes, metadata, an optional ``verify`` callback that
validation supplies from above), :mod:`.torchscript`, :mod:`.onnx` (trace, translate, write),
:mod:`.gradient` (gradient programs for ``--with-grad``), :mod:`.manifest` (many specs at once).
"""

from lossport.export.exporter import (
    EXPORT_SEED,
    FORMATS,
    ExportRequest,
    ExportResult,
    default_path,
    export_artifact,
    select_dynamic,
)

__all__ = [
    "EXPORT_SEED",
    "FORMATS",
    "ExportRequest",
    "ExportResult",
    "default_path",
    "export_artifact",
    "select_dynamic",
]
