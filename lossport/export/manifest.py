"""Export many specs into one folder with a ``manifest.json`` describing every artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from lossport._version import __version__
from lossport.errors import ExportError, LossportError
from lossport.export.exporter import ExportResult, Verify, default_path, export_artifact
from lossport.io.atomic import atomic_path
from lossport.spec import Spec

MANIFEST = "manifest.json"


def export_many(
    specs: Sequence[Spec],
    folder: Path,
    *,
    formats: Sequence[str],
    with_grad: bool,
    verify: Optional[Verify] = None,
    progress: Optional[Callable[[ExportResult], None]] = None,
) -> Tuple[Path, List[Tuple[str, str]]]:
    """Export every spec in every format (and its gradient variant where differentiable, with
    ``with_grad``) into ``folder``, then write ``manifest.json`` for what succeeded.

    Returns the manifest path and ``(spec name, error message)`` for each failure.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"output folder {folder} does not exist; create it first")
    entries: List[Dict[str, Any]] = []
    failures: List[Tuple[str, str]] = []
    for spec in specs:
        files = []
        variants = [False, True] if with_grad and spec.differentiable_inputs else [False]
        try:
            for fmt in formats:
                for grad in variants:
                    result = export_artifact(
                        spec,
                        fmt=fmt,
                        with_grad=grad,
                        verify=verify,
                        path=folder / default_path(spec, fmt, grad),
                    )
                    files.append(
                        {
                            "file": result.path.name,
                            "format": fmt,
                            "with_grad": grad,
                            "sha256": result.sha256,
                            "outputs": result.outputs,
                            "dynamic_axes": result.dynamic,
                        }
                    )
                    if progress is not None:
                        progress(result)
        except LossportError as exc:
            failures.append((spec.name, str(exc)))
            continue
        description = spec.describe()
        entries.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "config": spec.resolve_config(),
                "inputs": description["inputs"],
                "outputs": description["outputs"],
                "files": files,
            }
        )
    manifest = folder / MANIFEST
    with atomic_path(manifest) as temp:
        temp.write_text(
            json.dumps({"lossport": __version__, "formats": list(formats), "artifacts": entries}, indent=2)
        )
    return manifest, failures
