"""Which implementation of the per-record leaf is active: the Cython extensions or their twins.

Every module under ``processor._native`` (compiled from ``_native/*.pyx``) has a readable
pure-Python twin with the same interface; the twin is the specification, the extension the speed.

Selection, once per process, from the environment:

- ``PROCESSOR_NO_EXTENSIONS=1`` forces the twins (``python``);
- otherwise the extensions are imported (``native``); when one is missing the twins are used, and
  ``PROCESSOR_REQUIRE_EXTENSIONS=1`` turns that fallback into :class:`ExtensionMissingError`
  (CI sets it, so a silently missing ``.so`` cannot make parity tests compare the twin with
  itself).
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Literal

from processor.errors import ProcessorError

__all__ = [
    "EXTENSIONS",
    "UNITS",
    "ExtensionMissingError",
    "Implementation",
    "active",
    "describe",
    "extension",
    "implementation",
    "log_implementation",
    "native",
    "require",
    "twin",
    "use_native",
]

log = logging.getLogger(__name__)

#: The per-record units: ``processor._native.<name>`` and the twin that specifies it.
UNITS = {
    "jsonscan": "processor.records.jsonscan",
    "route": "processor.records.route",
    "audit": "processor.records.audit",
    "typed": "processor.records.typed",
    "plan": "processor.cel.plan",
    "template": "processor.policy.template",
    "activity": "processor.activity",
}

#: The compiled modules, ``processor._native.<name>``, that the native path needs (every unit of
#: :data:`UNITS`, and any other compiled module).
EXTENSIONS = (
    "jsonscan",
    "route",
    "audit",
    "typed",
    "plan",
    "template",
    "activity",
    "ingestsplit",
    "kafkabatch",
)

Name = Literal["native", "python"]


@dataclass(frozen=True, slots=True)
class Implementation:
    """One implementation of the per-record units, chosen once and handed to what runs them.

    Each attribute is the module of that unit: ``processor._native.<unit>`` for ``native``, its
    twin (:data:`UNITS`) for ``python``; both have the same interface and give the same results.
    """

    name: Name
    jsonscan: ModuleType
    route: ModuleType
    audit: ModuleType
    typed: ModuleType
    plan: ModuleType
    template: ModuleType
    activity: ModuleType


class ExtensionMissingError(ProcessorError, ImportError):
    """A native extension is required (``PROCESSOR_REQUIRE_EXTENSIONS=1``) but cannot be loaded."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


_modules: dict[str, ModuleType] | None = None
_missing: str = ""


def _load() -> dict[str, ModuleType]:
    global _modules, _missing
    if _modules is not None:
        return _modules
    modules: dict[str, ModuleType] = {}
    if not _flag("PROCESSOR_NO_EXTENSIONS"):
        try:
            for name in EXTENSIONS:
                modules[name] = importlib.import_module(f"processor._native.{name}")
        except ImportError as exc:
            _missing = f"processor._native.{name}: {exc}"
            modules = {}
            if _flag("PROCESSOR_REQUIRE_EXTENSIONS"):
                raise ExtensionMissingError(
                    f"native extension required (PROCESSOR_REQUIRE_EXTENSIONS=1) but not "
                    f"loadable: {_missing}; build it with `pip install -e .` or "
                    "`python setup.py build_ext --inplace`"
                ) from exc
    _modules = modules
    return modules


def use_native() -> bool:
    """True when the Cython extensions are active."""
    return bool(_load())


def implementation() -> Name:
    """``native`` (Cython extensions) or ``python`` (the pure-Python twins)."""
    return "native" if use_native() else "python"


@cache
def twin() -> Implementation:
    """The pure-Python twins (the specification)."""
    return Implementation(
        "python", **{unit: importlib.import_module(path) for unit, path in UNITS.items()}
    )


@cache
def native() -> Implementation:
    """The Cython extensions; :class:`ExtensionMissingError` when one is not built."""
    return Implementation("native", **{unit: require(unit) for unit in UNITS})


def active() -> Implementation:
    """The implementation this process runs: :func:`native` when the extensions are in use
    (:func:`use_native`), else :func:`twin`."""
    return native() if use_native() else twin()


def extension(name: str) -> ModuleType | None:
    """The loaded extension ``processor._native.<name>``, or None on the Python path."""
    return _load().get(name)


def require(name: str) -> ModuleType:
    """The extension ``processor._native.<name>``; :class:`ExtensionMissingError` if not built."""
    module = _load().get(name)
    if module is None:
        try:
            return importlib.import_module(f"processor._native.{name}")
        except ImportError as exc:
            raise ExtensionMissingError(
                f"native extension processor._native.{name} is not available: {exc}"
            ) from exc
    return module


def describe() -> str:
    """A one-line description: the implementation and why (forced, missing extension)."""
    impl = implementation()
    if impl == "native":
        return "native (Cython extensions: " + ", ".join(EXTENSIONS) + ")"
    if _flag("PROCESSOR_NO_EXTENSIONS"):
        return "python (PROCESSOR_NO_EXTENSIONS=1)"
    return f"python (extension missing: {_missing})"


def log_implementation() -> None:
    """Log the active implementation once at start (for the runtime's start-up line)."""
    log.info("per-record implementation: %s", describe())
