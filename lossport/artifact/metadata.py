"""Artifact metadata: what was exported, from which config, with which contract.

Written into ONNX ``metadata_props`` and TorchScript extra files under the same keys, all
prefixed ``lossport.``; values are strings (JSON for structured ones), so any runtime can read
them:

| key | value |
|---|---|
| ``version`` | lossport version that wrote the artifact |
| ``spec``, ``kind`` | spec name and kind (``loss`` / ``model``) |
| ``format`` | ``onnx``, ``torchscript``, ``pt2`` (torch.export) or ``aoti`` (AOTInductor) |
| ``config`` | JSON object of plain values: the resolved config |
| ``inputs`` | JSON list: name, symbolic shape, dtype, domain, differentiable per input |
| ``outputs`` | JSON list of output names (gradients ``grad_<input>`` last) |
| ``dynamic_axes`` | JSON list of dynamic dim names |
| ``with_grad`` | ``true`` / ``false``; ``gradient`` says of what and w.r.t. which inputs |
| ``opset`` | ONNX opset (ONNX only) |
| ``weights`` | ``{"file", "sha256"}`` of the checkpoint the weights came from, if any |
| ``exporter`` | ONNX: ``direct`` (lossport's trace) or ``torch.onnx`` (its fallback, forward only) |
| ``torchscript`` | TorchScript: ``script`` or ``trace`` (a module that does not script) |
| ``device`` | AOTInductor: the device the package is compiled for (``cpu``, ``cuda``) |
| ``preprocess`` | the preprocessing contract of an image model (:mod:`lossport.spec.preprocess`) |
| ``precision`` | numeric precision of the artifact, one of ``PRECISIONS`` (absent: ``fp32``) |
| ``calibration`` | int8: ``{"images", "sha256", "builtin"}`` of the calibration set (:mod:`lossport.export.calibration`) |

An artifact is untrusted data. :func:`read_metadata` reads the keys without running anything
and with bounded sizes; :func:`parse_metadata` checks every value against this schema before
any of it is used. Nothing in metadata names a path or grants trust.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from lossport._version import __version__
from lossport.artifact.devices import DEVICES
from lossport.errors import ArtifactError
from lossport.io.digest import FileRecord
from lossport.spec import Spec
from lossport.spec.preprocess import METADATA_KEY as PREPROCESS_KEY
from lossport.spec.preprocess import Preprocess

PREFIX = "lossport."
FORMATS = ("onnx", "torchscript", "pt2", "aoti")
MAX_VALUE_BYTES = 1 << 20  # one metadata value
MAX_ENTRIES = 4096  # names in a list, keys in the config
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
MAX_CALIBRATION_IMAGES = 1 << 20
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-\[\],=]{0,127}$")


def build_metadata(
    spec: Spec,
    config: Mapping[str, Any],
    *,
    fmt: str,
    dynamic: Sequence[str],
    with_grad: bool,
    outputs: Sequence[str],
    opset: Optional[int],
    weights: Optional[FileRecord] = None,
    precision: str = "fp32",
    calibration: Optional["CalibrationRecord"] = None,
) -> Dict[str, str]:
    """The ``lossport.*`` keys of an artifact of ``spec`` at ``config``."""
    inputs = [
        {
            "name": t.name,
            "shape": list(t.shape),
            "dtype": "float32" if t.domain.is_float else "int64",
            "domain": t.domain.describe(),
            "differentiable": t.differentiable,
        }
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
        meta["gradient"] = json.dumps(
            {
                "of": f"{spec.objective.__name__}({grad_of})",
                "inputs": list(spec.differentiable_inputs),
            }
        )
    if opset is not None:
        meta["opset"] = str(opset)
    if weights is not None:
        meta["weights"] = json.dumps(weights.to_json())
    meta["precision"] = precision
    if calibration is not None:
        meta["calibration"] = json.dumps(calibration.to_json())
    if spec.metadata is not None:
        meta.update(spec.metadata(config))
    return {PREFIX + k: v for k, v in meta.items()}


# -- reading -----------------------------------------------------------------------------------


def read_metadata(path: Path) -> Dict[str, str]:
    """The ``lossport.*`` metadata of an ``.onnx`` or TorchScript ``.pt`` file (prefix removed),
    as raw strings.

    Raises :class:`ArtifactError` when the file is missing, unreadable, not a lossport
    artifact, or holds an oversized value.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() != ".onnx" and not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path}: neither an ONNX model (.onnx) nor a TorchScript archive (.pt)")
    meta = read_any_metadata(path)
    if "spec" not in meta:
        raise ArtifactError(
            f"{path}: not exported by lossport (no lossport.* metadata); export it with `lossport export`"
        )
    return meta


def read_any_metadata(path: Path) -> Dict[str, str]:
    """Like :func:`read_metadata`, but an ONNX model or TorchScript archive made elsewhere
    gives whatever ``lossport.*`` keys it has (usually none) instead of an error. A zip archive
    is read as TorchScript, anything else as ONNX."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    raw = _torchscript_metadata(path) if zipfile.is_zipfile(path) else _onnx_metadata(path)
    return {k[len(PREFIX) :]: v for k, v in raw.items() if k.startswith(PREFIX)}


def _onnx_metadata(path: Path) -> Dict[str, str]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for corrupt files
        raise ArtifactError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in props.items():
        _check_size(path, key, len(value.encode("utf-8", "surrogatepass")))
    return props


def _torchscript_metadata(path: Path) -> Dict[str, str]:
    """TorchScript extra files live at ``<archive>/extra/<name>`` inside the zip; each is
    size-checked (from the zip directory) before it is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            found = {}
            for info in archive.infolist():
                name = Path(info.filename).name
                if "/extra/" not in info.filename or not name.startswith(PREFIX):
                    continue
                _check_size(path, name, info.file_size)
                data = archive.read(info)
                _check_size(path, name, len(data))
                found[name] = data.decode("utf-8")
            return found
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a readable TorchScript archive ({exc})") from None


def _check_size(path: Path, key: str, size: int) -> None:
    if size > MAX_VALUE_BYTES:
        raise ArtifactError(
            f"{path}: metadata {key} holds {size} bytes, more than {MAX_VALUE_BYTES}: not a lossport artifact"
        )


# -- the schema ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationRecord:
    """What an int8 artifact records of its calibration set: the number of images, the set's
    sha256 (:func:`lossport.export.calibration.set_digest`) and whether it is the built-in set."""

    images: int
    sha256: str
    builtin: bool

    def to_json(self) -> Dict[str, Any]:
        return {"images": self.images, "sha256": self.sha256, "builtin": self.builtin}

    @staticmethod
    def from_json(data: Any) -> Optional["CalibrationRecord"]:
        """The record, or ``None`` when ``data`` does not have the schema's form."""
        ok = (
            isinstance(data, dict)
            and set(data) == {"images", "sha256", "builtin"}
            and type(data["images"]) is int
            and 1 <= data["images"] <= MAX_CALIBRATION_IMAGES
            and isinstance(data["sha256"], str)
            and len(data["sha256"]) == 64
            and all(c in "0123456789abcdef" for c in data["sha256"])
            and isinstance(data["builtin"], bool)
        )
        return CalibrationRecord(data["images"], data["sha256"], data["builtin"]) if ok else None


@dataclass(frozen=True)
class ArtifactInfo:
    """The checked metadata of an artifact (see the module docstring for each field)."""

    source: str
    spec: str
    kind: str
    format: str
    config: Dict[str, Any]
    inputs: List[str]
    outputs: List[str]
    dynamic: List[str]
    with_grad: bool
    opset: Optional[int]
    weights: Optional[FileRecord]
    preprocess: Optional[Preprocess]
    precision: str = "fp32"
    calibration: Optional[CalibrationRecord] = None
    device: str = "cpu"


def read_artifact_info(path: Path) -> ArtifactInfo:
    """:func:`read_metadata` checked by :func:`parse_metadata`."""
    return parse_metadata(read_metadata(path), str(path))


def parse_metadata(meta: Mapping[str, str], source: str) -> ArtifactInfo:
    """Check every value of ``meta`` (prefix removed) against the schema; raise
    :class:`ArtifactError` naming the first bad key."""

    def fail(key: str, why: str) -> ArtifactError:
        shown = meta.get(key, "")
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return ArtifactError(
            f"{source}: corrupt lossport.{key} metadata {shown!r} ({why}); "
            f"re-export the artifact with `lossport export`"
        )

    def loaded(key: str, default: Any = None) -> Any:
        if key not in meta:
            if default is None:
                raise fail(key, "missing")
            return default
        try:
            return json.loads(meta[key], parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise fail(key, "not valid JSON") from None

    def names(key: str) -> List[str]:
        value = loaded(key)
        if (
            not isinstance(value, list)
            or len(value) > MAX_ENTRIES
            or not all(isinstance(n, str) and _NAME.match(n) for n in value)
        ):
            raise fail(key, "expected a list of names")
        return value

    spec = meta.get("spec", "")
    if not _NAME.match(spec):
        raise fail("spec", "expected a spec name")
    kind = meta.get("kind", "")
    if kind not in ("loss", "model"):
        raise fail("kind", "expected loss or model")
    fmt = meta.get("format", "")
    if fmt not in FORMATS:
        raise fail("format", f"expected {' or '.join(FORMATS)}")
    config = loaded("config")
    if (
        not isinstance(config, dict)
        or len(config) > MAX_ENTRIES
        or not all(_NAME.match(k) and _plain(v) for k, v in config.items())
    ):
        raise fail("config", "expected an object of plain values")
    inputs = loaded("inputs")
    if (
        not isinstance(inputs, list)
        or len(inputs) > MAX_ENTRIES
        or not all(
            isinstance(i, dict) and isinstance(i.get("name"), str) and _NAME.match(i["name"]) for i in inputs
        )
    ):
        raise fail("inputs", "expected a list of named inputs")
    with_grad = loaded("with_grad")
    if not isinstance(with_grad, bool):
        raise fail("with_grad", "expected true or false")
    opset = None
    if "opset" in meta:
        opset = loaded("opset")
        if type(opset) is not int or not 1 <= opset <= 1000:
            raise fail("opset", "expected an opset number")
    weights = None
    if "weights" in meta:
        weights = FileRecord.from_json(loaded("weights"), source)
    preprocess = preprocess_of(meta, source)
    precision = meta.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise fail("precision", f"expected one of {', '.join(PRECISIONS)}")
    calibration = None
    if "calibration" in meta:
        calibration = CalibrationRecord.from_json(loaded("calibration"))
        if calibration is None:
            raise fail("calibration", "expected images, sha256 and builtin of a calibration set")
    device = meta.get("device", "cpu")
    if device not in DEVICES:
        raise fail("device", f"expected {' or '.join(DEVICES)}")
    if (precision == "int8") != (calibration is not None):
        raise fail("calibration", "an int8 artifact, and only an int8 one, records its calibration set")
    return ArtifactInfo(
        source=source,
        spec=spec,
        kind=kind,
        format=fmt,
        config=config,
        inputs=[i["name"] for i in inputs],
        outputs=names("outputs"),
        dynamic=names("dynamic_axes"),
        with_grad=with_grad,
        opset=opset,
        weights=weights,
        preprocess=preprocess,
        precision=precision,
        calibration=calibration,
        device=device,
    )


def preprocess_of(meta: Mapping[str, str], source: str) -> Optional[Preprocess]:
    """The preprocessing contract in raw metadata (prefix removed), or ``None``."""
    text = meta.get(PREPROCESS_KEY[len(PREFIX) :])
    return Preprocess.from_json(text, source) if text else None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _plain(value: Any, depth: int = 0) -> bool:
    """JSON scalars, and lists of them (one level): what a config holds."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return not isinstance(value, str) or len(value) <= 4096
    if isinstance(value, list) and depth == 0:
        return len(value) <= MAX_ENTRIES and all(_plain(v, 1) for v in value)
    return False
