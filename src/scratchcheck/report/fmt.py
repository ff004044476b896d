"""Numbers and names as every report prints them, so the terminal, HTML and Markdown agree."""

from __future__ import annotations

import math
import re
from pathlib import PurePath

from ..results import REGISTRY_PREFIX

VERDICT_COLOURS = {
    "identical": "#8e1b3a",
    "derived": "#c2410c",
    "inconclusive": "#a16207",
    "independent": "#15803d",
    "not_comparable": "#6b7280",
    "not_compared": "#9ca3af",
}
VERDICT_STYLES = {  # rich styles for the terminal
    "identical": "bold magenta",
    "derived": "bold red",
    "inconclusive": "bold yellow",
    "independent": "bold green",
    "not_comparable": "bold bright_black",
}
# "vision: derived from X", "language_model: independent of X", ...
VERDICT_PREPOSITIONS = {
    "identical": "to",
    "derived": "from",
    "inconclusive": "against",
    "independent": "of",
    "not_comparable": "with",
}
COMPONENT_LABELS = {
    "vision": "vision tower",
    "audio": "audio tower",
    "projector": "projector",
    "language_model": "language model",
    "embeddings": "embeddings",
    "head": "output head",
    "extra": "extra module",
    "other": "other tensors",
}


def verdict_text(verdict: str | None) -> str:
    return (verdict or "n/a").replace("_", " ")


def component_label(kind: str | None) -> str:
    """Plain-language name of a component kind ("vision" -> "vision tower")."""
    return COMPONENT_LABELS.get(kind or "", (kind or "component").replace("_", " "))


def component_title(name: str, kind: str | None) -> str:
    """``vision (vision tower)``; just ``projector`` where the name already says it."""
    label = component_label(kind)
    return name if label == name else f"{name} ({label})"


def model_name(path: str | None) -> str:
    """Short display name: ``org/name`` for a Hugging Face cache snapshot, ``registry:NAME`` for a
    registry entry, else the last path part."""
    if not path:
        return "n/a"
    if path.startswith(REGISTRY_PREFIX):
        return path
    match = re.search(r"models--([^/\\]+?)--([^/\\]+)", path)
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    return PurePath(path.rstrip("/\\")).name or path


def params(n: int | None) -> str:
    """1312896 -> "1.31M"; 670000000 -> "670M"; 7e9 -> "7B"."""
    if n is None:
        return "n/a"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)


def share(x: float | None) -> str:
    """A fraction as a percentage with enough digits to tell 0.0004% from 0%."""
    if x is None or not math.isfinite(x):
        return "n/a"
    pct = 100 * x
    if pct == 0 or pct >= 0.1:
        return f"{pct:.1f}%"
    return f"{pct:.2g}%"


def p_value(p: float | None) -> str:
    """p-values: exact-looking digits only where they mean something; 0 is reported as the floor."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p <= 0:
        return "< 1e-300"
    if p < 1e-3:
        return f"{p:.1e}"
    return f"{p:.3g}"


def p_is(p: float | None) -> str:
    """``p = 0.62`` or ``p < 1e-300``, for running text."""
    text = p_value(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def corr(r: float | None) -> str:
    """Pearson, Spearman or cosine with four decimals: 0.9998 and 1.0000 must look different."""
    if r is None or not math.isfinite(r):
        return "n/a"
    return f"{r:.4f}"


def number(x: float | None) -> str:
    """Any other measurement (relative L2, max |diff|, statistics)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}"


def shape(dims: list[int] | None) -> str:
    return "×".join(str(d) for d in dims) if dims else "scalar"


# Audit outcomes (scratchcheck.audit): the terminal style and the HTML colour of each.
OUTCOME_STYLES = {"PASS": "bold green", "FAIL": "bold red", "UNDETERMINED": "bold yellow"}
OUTCOME_COLOURS = {"PASS": "#15803d", "FAIL": "#b91c1c", "UNDETERMINED": "#a16207"}


def registry_searched(path: str, entries: int, candidates: int, compared: int) -> str:
    """One sentence on a registry compared against: its size, the entries compared, the rest."""
    return (
        f"registry {path}: {entries} registered model(s), {candidates} sharing a tensor shape with the "
        f"suspect, {compared} passed by the screen to the full test; the other {entries - compared} "
        "count as tests with p = 1"
    )
