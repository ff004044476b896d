"""The audit as one self-contained HTML page (inline CSS, no script), from ``templates/audit.html.j2``."""

from __future__ import annotations

import os
from pathlib import Path

from ..audit import AuditResult
from . import fmt
from ._atomic import write_text_atomic
from .html import _environment


def render_audit_html(result: AuditResult) -> str:
    return (
        _environment()
        .get_template("audit.html.j2")
        .render(a=result, outcome_colours=fmt.OUTCOME_COLOURS, registry_searched=fmt.registry_searched)
    )


def write_audit_html(result: AuditResult, path: str | os.PathLike[str]) -> Path:
    """Write the HTML audit atomically (complete or absent)."""
    return write_text_atomic(path, render_audit_html(result))
