"""The lossport tensor file: one tensor, raw little-endian data after a small JSON header.

It is the common input format of every runtime lossport deploys to (Python, C++ with libtorch,
Node with ONNX Runtime), so that each of them scores exactly the same numbers; C++ and Node
read it with a few lines of code and no libraries. ``lossport preprocess`` writes it.

Layout (all integers little-endian)::

    offset 0       4 bytes   magic: the ASCII bytes "LPT1"
    offset 4       4 bytes   n: header length in bytes (uint32)
    offset 8       n bytes   header: a UTF-8 JSON object, padded with spaces so that the data
                             starts at a multiple of 8 bytes
    offset 8 + n             data: prod(shape) elements of dtype, little-endian, C order
                             (row-major: the last dimension varies fastest); nothing after it

Header keys:

- ``"shape"`` (required): list of ints, e.g. ``[2, 3, 256, 256]``;
- ``"dtype"`` (required): ``"float32"`` or ``"int64"``;
- descriptive, optional: ``"layout"`` (``"NCHW"``), ``"range"`` (``"[0,1]"``),
  ``"channel_order"`` (``"RGB"``) — the same keys as a model's ``lossport.spec.preprocess``
  contract —, ``"files"`` (the source images in batch order) and ``"seed"`` (of a random
  tensor). Readers ignore keys they do not know.

Files are written atomically (temp file beside the target, then ``os.replace``).

A tensor file is untrusted input. :func:`read` accepts strict JSON only (no ``NaN``/``Infinity``,
valid UTF-8), at most 64 levels of nesting, at most 32 dims, each an exact integer from 0 to
2^53 - 1, a header inside the file, and exactly ``prod(shape) * itemsize`` data bytes, all
checked before the data is touched; anything else is one :class:`InvalidInputError`. The C++
and Node readers of ``examples/`` apply the same rules.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import numpy as np
import torch

from lossport.errors import InvalidInputError
from lossport.io.atomic import atomic_path

MAGIC = b"LPT1"
ALIGNMENT = 8
MAX_DIMS = 32
MAX_DEPTH = 64
MAX_SIZE = 2**53 - 1
DTYPES = {"float32": np.dtype("<f4"), "int64": np.dtype("<i8")}
_PREFIX = len(MAGIC) + 4  # magic + header length

Header = Dict[str, Any]


def write(path: Union[str, Path], tensor: Union[torch.Tensor, np.ndarray], **info: Any) -> Header:
    """Write ``tensor`` (float32 or int64) to ``path`` atomically; return the header written.

    ``info``: descriptive header keys (``layout``, ``range``, ``files``, ...), JSON values.
    """
    array = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    names = {d: n for n, d in DTYPES.items()}
    dtype = names.get(array.dtype.newbyteorder("<"))
    if dtype is None:
        raise InvalidInputError(f"tensor files hold {' or '.join(DTYPES)}, not {array.dtype}")
    header = {"shape": list(array.shape), "dtype": dtype, **info}
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-(_PREFIX + len(text)) % ALIGNMENT)
    with atomic_path(Path(path)) as temp, open(temp, "wb") as out:
        out.write(MAGIC + struct.pack("<I", len(text)) + text)
        out.write(np.ascontiguousarray(array, dtype=DTYPES[dtype]).tobytes())
    return header


def read(path: Union[str, Path]) -> Tuple[np.ndarray, Header]:
    """The tensor (a numpy array in native byte order) and the header of a tensor file.

    Raises :class:`InvalidInputError` when the file is missing or not a valid tensor file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if raw[: len(MAGIC)] != MAGIC or len(raw) < _PREFIX:
        raise InvalidInputError(
            f"{path}: not a lossport tensor file (no {MAGIC.decode()} magic); "
            f"make one with `lossport preprocess`"
        )
    (length,) = struct.unpack_from("<I", raw, len(MAGIC))
    if _PREFIX + length > len(raw):
        raise InvalidInputError(f"{path}: header length {length} runs past the end of the file")
    header = _parse_header(path, raw[_PREFIX : _PREFIX + length])
    shape, dtype = _check_header(path, header)
    expected = math.prod(shape) * dtype.itemsize
    data = raw[_PREFIX + length :]
    if len(data) != expected:
        raise InvalidInputError(
            f"{path}: {len(data)} data bytes, but shape {list(shape)} of "
            f"{header['dtype']} needs {expected} (truncated or corrupt file)"
        )
    array = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="), copy=True)
    return array.reshape(shape), header


def _parse_header(path: Path, text: bytes) -> Any:
    """Strict JSON of at most ``MAX_DEPTH`` levels (checked before parsing, so no recursion
    limit is ever reached)."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: tensor file header is not UTF-8") from None
    if _nesting(decoded) > MAX_DEPTH:
        raise InvalidInputError(f"{path}: tensor file header nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(decoded, parse_constant=_no_constant)
    except ValueError as exc:
        raise InvalidInputError(f"{path}: corrupt tensor file header ({exc})") from None


def _nesting(text: str) -> int:
    """The deepest bracket nesting of a JSON text, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_header(path: Path, header: Any) -> Tuple[Tuple[int, ...], np.dtype]:
    if not isinstance(header, dict):
        raise InvalidInputError(f"{path}: tensor file header is not a JSON object")
    shape = header.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(d) is int and 0 <= d <= MAX_SIZE for d in shape)
    ):
        shown = repr(shape) if len(repr(shape)) <= 80 else repr(shape)[:77] + "..."
        raise InvalidInputError(
            f"{path}: header 'shape' must be a list of at most {MAX_DIMS} sizes from 0 to "
            f"{MAX_SIZE}, got {shown}"
        )
    dtype = header.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise InvalidInputError(f"{path}: header 'dtype' must be {' or '.join(DTYPES)}, got {dtype!r:.80}")
    # numpy's own bound: the other sizes of a shape with a 0 must not overflow int64 either
    if math.prod(d for d in shape if d) * DTYPES[dtype].itemsize > 2**63 - 1:
        raise InvalidInputError(f"{path}: header 'shape' {shape} is too large")
    return tuple(shape), DTYPES[dtype]
