"""Where specs are registered: ``register(Spec(...))`` at the bottom of the module that defines
the loss or model, or in a user's spec file. :mod:`lossport.catalog` loads and looks them up."""

from __future__ import annotations

from typing import Dict, List

from lossport.errors import ConfigError
from lossport.spec.definition import Spec

_REGISTERED: Dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    """Add ``spec`` under its name, which must be new; returns ``spec`` (usable as a decorator
    result or an expression)."""
    if not isinstance(spec, Spec):
        raise ConfigError(f"register() takes a lossport.Spec, got {type(spec).__name__}")
    if spec.name in _REGISTERED:
        raise ConfigError(f"spec {spec.name!r} is registered twice; spec names are unique")
    if not spec.shapes:
        raise ConfigError(f"spec {spec.name!r} needs at least one test shape")
    _REGISTERED[spec.name] = spec
    return spec


def withdraw(name: str) -> None:
    """Remove the spec called ``name`` (for :func:`lossport.catalog.registered`)."""
    _REGISTERED.pop(name, None)


def registered_specs() -> List[Spec]:
    """Every spec registered so far, in registration order."""
    return list(_REGISTERED.values())
