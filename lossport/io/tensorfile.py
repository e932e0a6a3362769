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
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Union

import numpy as np
import torch

from lossport.errors import InvalidInputError
from lossport.io.atomic import atomic_path

MAGIC = b"LPT1"
ALIGNMENT = 8
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
    try:
        header = json.loads(raw[_PREFIX : _PREFIX + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path}: corrupt tensor file header ({exc})") from exc
    shape, dtype = _check_header(path, header)
    expected = math.prod(shape) * dtype.itemsize
    data = raw[_PREFIX + length :]
    if len(data) != expected:
        raise InvalidInputError(
            f"{path}: {len(data)} data bytes, but shape {shape} of "
            f"{header['dtype']} needs {expected} (truncated or corrupt file)"
        )
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(shape), header


def _check_header(path: Path, header: Mapping[str, Any]) -> Tuple[Tuple[int, ...], np.dtype]:
    if not isinstance(header, dict):
        raise InvalidInputError(f"{path}: tensor file header is not a JSON object")
    shape = header.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInputError(f"{path}: header 'shape' must be a list of sizes, got {shape!r}")
    if header.get("dtype") not in DTYPES:
        raise InvalidInputError(
            f"{path}: header 'dtype' must be {' or '.join(DTYPES)}, got {header.get('dtype')!r}"
        )
    return tuple(shape), DTYPES[header["dtype"]]
