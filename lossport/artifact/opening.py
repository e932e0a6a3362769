"""Open any artifact to run, by its format: ONNX Runtime for ``.onnx``, a checked
``torch.export`` program or an AOTInductor package for ``.pt2`` (by the format its metadata
records), TorchScript otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from lossport.artifact.devices import DEVICES
from lossport.artifact.metadata import read_any_metadata
from lossport.artifact.pt2 import AotiArtifact, Pt2Artifact
from lossport.artifact.runtime import OnnxArtifact, TorchScriptArtifact
from lossport.errors import ArtifactError


def open_artifact(
    path: Path, device: str = "cpu", threads: Optional[int] = None, trusted: bool = False
) -> Any:
    """The artifact at ``path`` ready to run on ``device``. ``threads`` sets ONNX Runtime's
    intra-op threads (the others follow ``torch.set_num_threads``); ``trusted`` allows an
    AOTInductor package, whose loading runs native code from the file."""
    path = Path(path)
    if device not in DEVICES:
        raise ArtifactError(f"unknown device {device!r}; use {' or '.join(DEVICES)}")
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return OnnxArtifact(path, device, threads)
    if suffix == ".pt2":
        if read_any_metadata(path).get("format") == "aoti":
            return AotiArtifact(path, device, trusted=trusted)
        return Pt2Artifact(path, device)
    return TorchScriptArtifact(path, device)
