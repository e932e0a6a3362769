"""The catalog: every spec lossport knows, looked up by name.

Built-in specs register themselves when their family module is imported (:mod:`lossport.losses`,
:mod:`lossport.models`); :func:`all_specs` and :func:`get_spec` import them on first use.
"""

from __future__ import annotations

import contextlib
import difflib
from typing import Iterator, List, Optional

from lossport.errors import UnknownNameError
from lossport.spec import Spec
from lossport.spec.registration import register, registered_specs, withdraw


def _load_builtins() -> None:
    # Importing the families runs their register() calls.
    import lossport.losses
    import lossport.models  # noqa: F401


def all_specs(kind: Optional[str] = None) -> List[Spec]:
    """Known specs in registration order, optionally only one ``kind`` (``"loss"``/``"model"``)."""
    _load_builtins()
    return [s for s in registered_specs() if kind is None or s.kind == kind]


def get_spec(name: str, kind: Optional[str] = None) -> Spec:
    """The spec called ``name``; an unknown name raises with the closest known names."""
    specs = {s.name: s for s in all_specs(kind)}
    if name in specs:
        return specs[name]
    what = kind or "spec"
    close = difflib.get_close_matches(name, specs, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownNameError(f"unknown {what} {name!r}{hint} (`lossport list` shows them all)")


@contextlib.contextmanager
def registered(spec: Spec) -> Iterator[Spec]:
    """``spec`` is known to the catalog inside the ``with`` block only."""
    _load_builtins()
    register(spec)
    try:
        yield spec
    finally:
        withdraw(spec.name)
