"""Import user Python code named on the command line: a ``.py`` file path or an importable
module name (``my_losses.py``, ``my_package.losses``). Used for ``--specs`` and for the
``SOURCE:FACTORY`` of ``export module`` / ``validate module``: code the user asked to run."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from lossport.errors import ConfigError, brief_reason


def is_path(source: str) -> bool:
    return source.endswith(".py") or "/" in source or "\\" in source


def import_source(source: str, what: str = "--specs") -> ModuleType:
    """The module of ``source``: a ``.py`` file (its folder goes on ``sys.path`` first, so its
    own imports of neighbouring files work) or a module name. Any failure is one
    :class:`ConfigError` naming ``what`` and ``source``."""
    if is_path(source):
        path = Path(source).resolve()
        if not path.is_file():
            raise ConfigError(f"{what} {source}: no such file")
        name = f"lossport_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        if name in sys.modules:
            return sys.modules[name]
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ConfigError(f"{what} {source}: not a Python file")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: any error, in one line
            del sys.modules[name]
            raise ConfigError(f"{what} {source}: importing it failed ({brief_reason(exc)})") from None
        return module
    try:
        return importlib.import_module(source)
    except Exception as exc:  # ModuleNotFoundError, or any error in the module's own code
        raise ConfigError(f"{what} {source}: importing it failed ({brief_reason(exc)})") from None
