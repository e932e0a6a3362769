"""Artifact metadata: what was exported, from which config, with which contract.

Written into ONNX ``metadata_props`` and TorchScript extra files under the same keys, all
prefixed ``lossport.``; values are strings (JSON for structured ones), so any runtime can read
them. ``read_metadata`` reads them back from either format without importing the artifact's
code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping, Sequence

from lossport import __version__
from lossport.errors import ArtifactError
from lossport.registry import Spec

PREFIX = "lossport."


def build_metadata(spec: Spec, config: Mapping[str, Any], *, fmt: str, dynamic: Sequence[str],
                   with_grad: bool, outputs: Sequence[str], opset: int | None) -> Dict[str, str]:
    inputs = [
        {"name": t.name, "shape": list(t.shape), "dtype": "float32" if t.domain.is_float else "int64",
         "domain": t.domain.describe(), "differentiable": t.differentiable}
        for t in spec.inputs
    ]
    meta = {
        "version": __version__,
        "spec": spec.name,
        "kind": spec.kind,
        "format": fmt,
        "config": json.dumps(dict(config), sort_keys=True),
        "inputs": json.dumps(inputs),
        "outputs": json.dumps(list(outputs)),
        "dynamic_axes": json.dumps(list(dynamic)),
        "with_grad": json.dumps(with_grad),
    }
    if with_grad:
        grad_of = spec.outputs[spec.grad_output_index]
        meta["gradient"] = json.dumps({
            "of": f"{spec.objective.__name__}({grad_of})",
            "inputs": list(spec.differentiable_inputs),
        })
    if opset is not None:
        meta["opset"] = str(opset)
    if spec.metadata is not None:
        meta.update(spec.metadata(config))
    return {PREFIX + k: v for k, v in meta.items()}


def read_metadata(path: Path) -> Dict[str, str]:
    """The ``lossport.*`` metadata of an ``.onnx`` or TorchScript ``.pt`` file (prefix removed).

    Raises :class:`ArtifactError` when the file is missing, unreadable, or not a lossport
    artifact.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    if path.suffix == ".onnx":
        raw = _onnx_metadata(path)
    elif zipfile.is_zipfile(path):
        raw = _torchscript_metadata(path)
    else:
        raise ArtifactError(f"{path}: neither an ONNX model (.onnx) nor a TorchScript archive (.pt)")
    meta = {k[len(PREFIX):]: v for k, v in raw.items() if k.startswith(PREFIX)}
    if "spec" not in meta:
        raise ArtifactError(f"{path}: not exported by lossport (no lossport.* metadata); "
                            f"export it with `lossport export`")
    return meta


def _onnx_metadata(path: Path) -> Dict[str, str]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for corrupt files
        raise ArtifactError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    return {p.key: p.value for p in model.metadata_props}


def _torchscript_metadata(path: Path) -> Dict[str, str]:
    """TorchScript extra files live at ``<archive>/extra/<name>`` inside the zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {
                Path(name).name: archive.read(name).decode("utf-8")
                for name in archive.namelist()
                if "/extra/" in name and Path(name).name.startswith(PREFIX)
            }
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not a readable TorchScript archive ({exc})") from exc
