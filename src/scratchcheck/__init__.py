"""scratchcheck: was this model trained from scratch? Answers from the weights themselves.

    import scratchcheck
    model = scratchcheck.open_model("path/or/org/name")   # lazy: headers only
    report = scratchcheck.compare("suspect/", ["reference/"])
    scratchcheck.fingerprint("model/", "model.scfp")       # compare it later without the weights
    with scratchcheck.Registry() as known:                  # which known model is it from?
        print(scratchcheck.scan("suspect/", known).components)
    print(report.verdict, [(c.suspect_component, c.verdict) for c in report.components])

Importing the package is cheap (numpy and ml_dtypes): scipy, click, rich and jinja2 load only when
a statistic, the command line or a report needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

# ``compare`` and ``fingerprint`` are both a module and a function; binding the functions here, after
# the modules have loaded, keeps ``scratchcheck.compare`` and ``scratchcheck.fingerprint`` the functions.
from .compare import compare
from .errors import FormatError, NotFoundError, ScratchcheckError, UnsafePickleError, UnsupportedError
from .fingerprint import Fingerprint, Verification, fingerprint, verify
from .inspection import ModelInspection, inspect_model
from .io import Checkpoint, TensorInfo, open_model
from .registry.scan import scan
from .registry.store import Registry
from .results import ComparisonReport, ComponentComparison, TensorComparison, report_from_dict

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
