"""The JSON outputs: versioned contracts (``scratchcheck.compare/1.1``, ``scratchcheck.inspect/1``,
``scratchcheck.audit/1``).

The schema files ``compare.schema.json``, ``inspect.schema.json`` and ``audit.schema.json`` beside this
module document and validate every key; ``docs/report-schema.md`` and ``docs/audit.md`` explain them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

from ..errors import FormatError
from ..results import SCHEMA, ComparisonReport, report_from_dict
from ._atomic import write_text_atomic

SCHEMA_FILES = {
    kind: Path(__file__).with_name(f"{kind}.schema.json") for kind in ("compare", "inspect", "audit")
}


class _Serialisable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def write_json(report: _Serialisable, path: str | os.PathLike[str]) -> Path:
    """Write a ``ComparisonReport``, ``ModelInspection`` or ``AuditResult`` as JSON, atomically (complete or absent)."""
    # allow_nan=False: NaN is not JSON; to_dict() already turned non-finite numbers into null.
    text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def load_report(path: str | os.PathLike[str]) -> ComparisonReport:
    """Read a comparison report written by ``write_json`` (e.g. to render HTML from it later)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or "schema" not in data:
        raise FormatError(path, "not a scratchcheck report (no 'schema' key)")
    family, _, major = str(data["schema"]).partition("/")
    expected_family, _, expected_major = SCHEMA.partition("/")
    if family != expected_family or major.split(".")[0] != expected_major.split(".")[0]:
        raise FormatError(path, f"schema {data['schema']!r} is not {SCHEMA!r}")
    try:
        return report_from_dict(data)
    except (KeyError, TypeError) as exc:
        raise FormatError(path, f"report does not match {SCHEMA}: {exc}") from None


def load_schema(kind: str = "compare") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``scratchcheck.compare/1.1``, or (``kind="inspect"`` /
    ``kind="audit"``) of ``scratchcheck.inspect/1`` / ``scratchcheck.audit/1``."""
    return json.loads(SCHEMA_FILES[kind].read_text(encoding="utf-8"))
