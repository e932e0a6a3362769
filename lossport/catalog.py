"""The catalog: every spec lossport knows, looked up by name.

Built-in specs register themselves when their family module is imported (:mod:`lossport.losses`,
:mod:`lossport.models`). User specs come from Python files or modules that call
``lossport.register(Spec(...))``: named with ``--specs`` (:func:`load_specs`), listed in the
``LOSSPORT_SPECS`` environment variable (separated by ``os.pathsep``), or contributed by
installed packages through the entry-point group ``lossport.specs`` (an entry point names a
module, or a function that registers specs when called). :func:`all_specs` and
:func:`get_spec` load all of them on first use.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from importlib import metadata
from typing import Iterator, List, Optional, Set

from lossport.errors import ConfigError, UnknownNameError, brief_reason
from lossport.io.python_source import import_source, is_path
from lossport.spec import Spec
from lossport.spec.registration import register, registered_specs, withdraw

SPECS_ENV = "LOSSPORT_SPECS"
ENTRY_POINT_GROUP = "lossport.specs"
_loaded: Set[str] = set()


def _load_builtins() -> None:
    # Importing the families runs their register() calls.
    import lossport.losses
    import lossport.models  # noqa: F401

    if "entry points" not in _loaded:
        _loaded.add("entry points")
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = entry_point.load()
                if callable(loaded):
                    loaded()
            except Exception as exc:  # a broken plugin is named, not hidden
                raise ConfigError(
                    f"entry point {entry_point.name} = {entry_point.value} ({ENTRY_POINT_GROUP}) "
                    f"failed: {brief_reason(exc)}"
                ) from None
    for source in filter(None, os.environ.get(SPECS_ENV, "").split(os.pathsep)):
        load_specs(source, what=SPECS_ENV)


def load_specs(source: str, what: str = "--specs") -> List[Spec]:
    """Import ``source`` (a ``.py`` file or a module name) once; returns the specs it
    registered. ``what`` names the option or variable in errors."""
    key = os.path.realpath(source) if is_path(source) else source
    if key in _loaded:
        return []
    before = {s.name for s in registered_specs()}
    import_source(source, what)
    _loaded.add(key)
    return [s for s in registered_specs() if s.name not in before]


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
