"""Open ``.pt2`` artifacts to run: a ``torch.export`` program (``pt2``) or an AOTInductor
package (``aoti``).

What is trusted, precisely:

- A ``pt2`` program is untrusted data. ``torch.export.load`` alone would run code chosen by the
  file: pickled weights and constants load with ``torch.load(weights_only=False)`` and
  ``pickle.loads``, symbolic shape expressions are parsed by ``sympy.sympify`` (``eval``),
  ``guards_code`` is compiled into a Python guard, and files under ``data/aotinductor/`` are
  loaded as native code. :func:`checked_program` therefore reads the file once (bounded), and
  accepts it only when every entry is one torch's archive writer makes for a plain program,
  every payload is raw tensor bytes (no pickle, no custom objects), the sample inputs load with
  ``torch.load(weights_only=True)``, every graph node calls an aten operator or a Python
  ``operator`` on sizes, and every expression and guard is integer arithmetic over shape
  symbols (:func:`safe_expression`, :func:`safe_guard`). Only those checked bytes are handed to
  ``torch.export.load``. Running the program computes aten ops on the inputs, nothing else.
- An ``aoti`` package is native code: loading it runs code chosen by the file. It is opened
  only with ``trusted=True``, which comes from the command line (``--trust-artifact``) or from
  lossport having compiled the file itself (validation's own exports), never from metadata.
"""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
import torch

from lossport.artifact.devices import prepare_torch_device
from lossport.artifact.metadata import read_any_metadata
from lossport.artifact.runtime import MAX_UNPACKED_BYTES
from lossport.errors import ArtifactError, brief_reason
from lossport.spec.flatten import flatten_outputs
from lossport.spec.limits import MAX_MODULE_BYTES

TRUST_FLAG = "--trust-artifact"
MAX_FILE_BYTES = MAX_MODULE_BYTES + (256 << 20)  # weights plus the serialized graph
MAX_JSON_BYTES = 256 << 20
MAX_EXPRESSION = 4096  # characters of one shape expression or guard
MAX_DEPTH = 64  # parentheses in one
_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_ENTRY = re.compile(
    r"^(models/model\.json|data/sample_inputs/model\.pt|data/weights/model_weights_config\.json|"
    r"data/constants/model_constants_config\.json|data/weights/weight_\d+|data/constants/tensor_\d+|"
    r"extra/[A-Za-z0-9_.\-]{1,128})$"
)
_PAYLOAD = re.compile(r"^(weight|tensor)_\d+$")
_TARGET = re.compile(
    r"^(torch\.ops\.aten\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+|_operator\.[a-z_]+|torch\.sym_[a-z_]+)$"
)
# sympy's srepr of integer shape arithmetic (what torch.export writes)
_SYMPY_NAMES = {
    "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Max", "Min", "Mod", "Abs",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "StrictLessThan", "StrictGreaterThan", "LessThan",
    "GreaterThan", "Equality", "Unequality", "And", "Or", "Not", "true", "false", "True", "False",
    "oo", "floor", "ceiling", "positive", "integer", "real", "nonnegative", "precision",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt",
    "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
}  # fmt: skip
_SYMPY_TOKEN = re.compile(
    r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+(\.\d+)?(e[+-]?\d+)?|'[A-Za-z0-9_.+\-]{1,64}'|[(),=+\-*/]"
)
_GUARD_SIZE = re.compile(r"L\['[A-Za-z_][A-Za-z0-9_]{0,63}'\](\[\d{1,3}\])?\.size\(\)\[\d{1,2}\]")
_GUARD_REST = re.compile(r"^[x0-9+\-*/%()<>=! ]*$")


def safe_expression(text: Any) -> bool:
    """Whether ``text`` is a sympy shape expression made only of known sympy names, numbers,
    quoted names and arithmetic (so ``sympify``'s ``eval`` can only build that expression)."""
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION or text.count("(") > MAX_DEPTH * 8:
        return False
    position, depth = 0, 0
    while position < len(text):
        match = _SYMPY_TOKEN.match(text, position)
        if match is None:
            return False
        token = match.group(0)
        if (token[0].isalpha() or token[0] == "_") and token not in _SYMPY_NAMES:
            return False
        depth += token == "("
        depth -= token == ")"
        if depth > MAX_DEPTH or depth < 0:
            return False
        position = match.end()
    return depth == 0


def safe_guard(text: Any) -> bool:
    """Whether ``text`` is a guard of integer arithmetic and comparisons over input sizes
    (``L['x'].size()[0]``, ``L['inputs'][0].size()[0]``), which is all ``torch.export`` writes; no ``**``."""
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION or "**" in text:
        return False
    rest = _GUARD_SIZE.sub("x", text)
    return bool(_GUARD_REST.match(rest)) and rest.count("(") <= MAX_DEPTH


def checked_program(path: Path) -> bytes:
    """The bytes of the ``torch.export`` archive at ``path`` once they pass every check of the
    module docstring; :class:`ArtifactError` naming the first that fails."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ArtifactError(
                f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} a pt2 program may hold"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_archive(path, archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: not a readable pt2 archive ({brief_reason(exc)})") from None
    return data


def _refuse(path: Path, why: str) -> ArtifactError:
    return ArtifactError(f"{path}: not a plain torch.export program lossport can load safely: {why}")


def _check_archive(path: Path, archive: zipfile.ZipFile) -> None:
    infos = archive.infolist()
    if sum(info.file_size for info in infos) > MAX_UNPACKED_BYTES:
        raise _refuse(path, f"it unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    roots = {info.filename.split("/", 1)[0] for info in infos}
    if len(roots) != 1 or any("/" not in info.filename for info in infos):
        raise _refuse(path, "its entries are not under one root folder")
    root = roots.pop() + "/"
    names = {info.filename[len(root) :]: info for info in infos if not info.is_dir()}
    for name in names:
        if name.startswith("data/aotinductor/"):
            raise _refuse(path, f"it holds native code ({name}): an AOTInductor package")
        if name not in _FIXED and not _ENTRY.match(name):
            raise _refuse(path, f"unexpected entry {name[:80]!r}")
    missing = [n for n in ("models/model.json", "data/sample_inputs/model.pt") if n not in names]
    if missing:
        raise _refuse(path, f"{missing[0]} is missing")

    def read_json(name: str) -> Any:
        info = names.get(name)
        if info is None:
            return None
        if info.file_size > MAX_JSON_BYTES:
            raise _refuse(path, f"{name} holds {info.file_size} bytes")
        try:
            return json.loads(archive.read(info))
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise _refuse(path, f"{name} is not valid JSON") from None

    for config_name, kind in (
        ("data/weights/model_weights_config.json", "weight"),
        ("data/constants/model_constants_config.json", "constant"),
    ):
        config = read_json(config_name)
        if config is None:
            continue
        entries = config.get("config") if isinstance(config, dict) else None
        if not isinstance(entries, dict):
            raise _refuse(path, f"{config_name} has no config object")
        for fqn, payload in entries.items():
            if not (
                isinstance(payload, dict)
                and payload.get("use_pickle") is False
                and isinstance(payload.get("path_name"), str)
                and _PAYLOAD.match(payload["path_name"])
            ):
                raise _refuse(path, f"{kind} {str(fqn)[:60]!r} is pickled or not a plain tensor")
    try:
        torch.load(io.BytesIO(archive.read(root + "data/sample_inputs/model.pt")), weights_only=True)
    except Exception as exc:  # the weights-only unpickler refuses in many ways
        raise _refuse(path, f"its sample inputs are not plain tensors ({brief_reason(exc)})") from None
    _check_program(path, read_json("models/model.json"))


def _check_program(path: Path, program: Any) -> None:
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        raise _refuse(path, "models/model.json is not a serialized program")
    guards = program.get("guards_code", [])
    if not isinstance(guards, list) or not all(safe_guard(g) for g in guards):
        raise _refuse(path, "a shape guard is not integer arithmetic over input sizes")
    ranges = program.get("range_constraints", {})
    if not isinstance(ranges, dict) or not all(re.match(r"^[a-z]{1,3}\d{1,9}$", str(k)) for k in ranges):
        raise _refuse(path, "a range constraint is not on a shape symbol")
    graph = program["graph_module"].get("graph")
    if not isinstance(graph, dict) or graph.get("custom_obj_values") not in (None, {}):
        raise _refuse(path, "its graph holds custom objects")
    stack: List[Any] = [program["graph_module"]]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "target" and not (isinstance(item, str) and _TARGET.match(item)):
                    raise _refuse(path, f"node target {str(item)[:80]!r} is not an aten operator")
                if key == "expr_str" and not safe_expression(item):
                    raise _refuse(path, f"shape expression {str(item)[:80]!r} is not integer arithmetic")
                if isinstance(item, (dict, list)):
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, (dict, list)))


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


class _Positional:
    path: Path
    device: str
    metadata: Dict[str, str]

    @property
    def with_grad(self) -> bool:
        return self.metadata.get("with_grad") == "true"

    def __call__(self, *inputs: torch.Tensor) -> Any:
        raise NotImplementedError

    def run_positional(self, inputs: Sequence[torch.Tensor], names: Sequence[str]) -> Dict[str, np.ndarray]:
        """Outputs, flattened and named ``names`` in order (a count mismatch is an error)."""
        try:
            outputs = flatten_outputs(self(*[t.to(self.device) for t in inputs]))
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise ArtifactError(
                f"{self.path}: the program fails on these inputs ({brief_reason(exc)})"
            ) from None
        if len(outputs) != len(names):
            raise ArtifactError(
                f"{self.path}: returns {len(outputs)} outputs, its metadata names {len(names)}"
            )
        return {name: _numpy(value) for name, value in zip(names, outputs)}


class Pt2Artifact(_Positional):
    """A ``torch.export`` program (``.pt2``), checked by :func:`checked_program`, loaded with
    ``torch.export.load`` and run with ``.module()`` on ``device``."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        self.path = Path(path)
        self.device = device
        prepare_torch_device(device)
        data = checked_program(self.path)
        self.metadata = read_any_metadata(self.path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.export.load(io.BytesIO(data))
                self.module = program.module().to(device)
        except Exception as exc:  # a corrupt graph fails in open-ended ways
            raise ArtifactError(
                f"{self.path}: not a loadable torch.export program ({brief_reason(exc)})"
            ) from None

    def __call__(self, *inputs: torch.Tensor) -> Any:
        with torch.no_grad():
            return self.module(*inputs)


class AotiArtifact(_Positional):
    """An AOTInductor package (``.pt2``) loaded with ``torch._inductor.aoti_load_package`` on
    ``device``. Loading runs native code from the file: refused unless ``trusted``."""

    def __init__(self, path: Path, device: str = "cpu", *, trusted: bool) -> None:
        self.path = Path(path)
        self.device = device
        if not trusted:
            raise ArtifactError(
                f"{self.path} is an AOTInductor package: loading it runs native code from the file; "
                f"pass {TRUST_FLAG} if you trust where it comes from"
            )
        prepare_torch_device(device)
        self.metadata = read_any_metadata(self.path)
        recorded = self.metadata.get("device", "cpu")
        if recorded != device:
            raise ArtifactError(f"{self.path}: compiled for {recorded}, not {device}")
        try:
            from torch._inductor import aoti_load_package

            self.module = aoti_load_package(str(self.path))
        except Exception as exc:  # the loader's C++ errors come as RuntimeError and others
            raise ArtifactError(
                f"{self.path}: not a loadable AOTInductor package ({brief_reason(exc)})"
            ) from None

    def __call__(self, *inputs: torch.Tensor) -> Any:
        with torch.no_grad():
            return self.module(*[t.contiguous() for t in inputs])
