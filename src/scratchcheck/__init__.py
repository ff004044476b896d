"""scratchcheck: was this model trained from scratch? Answers from the weights themselves.

    import scratchcheck
    model = scratchcheck.open_model("path/or/org/name")   # lazy: headers only
    report = scratchcheck.compare("suspect/", ["reference/"])
    scratchcheck.fingerprint("model/", "model.scfp")       # compare it later without the weights
    with scratchcheck.Registry() as known:                  # which known model is it from?
        print(scratchcheck.scan("suspect/", known).components)
    print(report.verdict, [(c.suspect_component, c.verdict) for c in report.components])

Importing the package loads nothing else: each name below is imported on its first use (PEP 562),
so the command line starts without the comparison code and ``compare`` without the registry's.
scipy, click, rich and jinja2 load only when a statistic, the command line or a report needs them.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name and the submodule that defines it.
_EXPORTS = {
    "Checkpoint": "io",
    "ComparisonReport": "results",
    "ComponentComparison": "results",
    "Fingerprint": "fingerprint",
    "FormatError": "errors",
    "ModelInspection": "inspection",
    "NotFoundError": "errors",
    "Registry": "registry.store",
    "ScratchcheckError": "errors",
    "TensorComparison": "results",
    "TensorInfo": "io",
    "UnsafePickleError": "errors",
    "UnsupportedError": "errors",
    "Verification": "fingerprint",
    "compare": "compare",
    "fingerprint": "fingerprint",
    "inspect_model": "inspection",
    "open_model": "io",
    "report_from_dict": "results",
    "scan": "registry.scan",
    "verify": "fingerprint",
}
__all__ = [
    "Checkpoint",
    "ComparisonReport",
    "ComponentComparison",
    "Fingerprint",
    "FormatError",
    "ModelInspection",
    "NotFoundError",
    "Registry",
    "ScratchcheckError",
    "TensorComparison",
    "TensorInfo",
    "UnsafePickleError",
    "UnsupportedError",
    "Verification",
    "compare",
    "fingerprint",
    "inspect_model",
    "open_model",
    "report_from_dict",
    "scan",
    "verify",
]


def _lazy_names(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package`` (this one, ``align``): ``exports`` maps each name to the
    module, relative to the package, that defines it; a name is imported once, then bound there."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


__getattr__ = _lazy_names(__name__, {name: f".{module}" for name, module in _EXPORTS.items()})


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """``compare`` and ``fingerprint`` are both a submodule and the function it defines: importing
    the submodule binds it on the package, and this binds the function in its place."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("compare", "fingerprint") and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:  # what type checkers see: the names bound eagerly
    from .compare import compare
    from .errors import FormatError, NotFoundError, ScratchcheckError, UnsafePickleError, UnsupportedError
    from .fingerprint import Fingerprint, Verification, fingerprint, verify
    from .inspection import ModelInspection, inspect_model
    from .io import Checkpoint, TensorInfo, open_model
    from .registry.scan import scan
    from .registry.store import Registry
    from .results import ComparisonReport, ComponentComparison, TensorComparison, report_from_dict
