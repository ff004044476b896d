"""Pair tensors by their values when names say nothing (renamed copies, anonymous ONNX initializers).

Candidates are grouped by shape (a matrix also meets its transpose: ONNX stores MatMul weights
``[in, out]``); within a group every suspect sketch is scored against every reference sketch and a
one-to-one assignment (Hungarian) picks the pairs. A pair is kept only when its similarity beats
what the best of that many chance comparisons would reach, so an unrelated model pairs with nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..arch import Entry
from .layermap import chance_bound
from .sketch import Sketcher, similarity

_NEVER = -10.0  # score of an impossible candidate (incompatible kinds or shapes)


@dataclass(frozen=True)
class ContentMatch:
    suspect: Entry
    reference: Entry
    transposed: bool  # the suspect is read transposed to line up with the reference
    similarity: float


def _shape_class(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(shape)) if len(shape) == 2 else shape


def match_by_content(
    suspect: list[Entry],
    reference: list[Entry],
    s_sketches: Sketcher,
    r_sketches: Sketcher,
    compatible: Callable[[Entry, Entry], bool],
) -> list[ContentMatch]:
    """The confident one-to-one content pairs between two lists of unpaired entries."""
    groups: dict[tuple[int, ...], tuple[list[Entry], list[Entry]]] = {}
    for entry in suspect:
        groups.setdefault(_shape_class(entry.view.shape), ([], []))[0].append(entry)
    for entry in reference:
        groups.setdefault(_shape_class(entry.view.shape), ([], []))[1].append(entry)
    matches = []
    for s_group, r_group in groups.values():
        if not s_group or not r_group:
            continue
        scores, flipped = _scores(s_group, r_group, s_sketches, r_sketches, compatible)
        n = min(r_sketches.get(r.view).n for r in r_group)
        if n < 3:
            continue
        bound = chance_bound(len(s_group), len(r_group), 1 / math.sqrt(n - 1))
        rows, cols = _assign(scores)
        for i, j in zip(rows, cols, strict=True):
            if scores[i, j] >= bound:
                matches.append(ContentMatch(s_group[i], r_group[j], bool(flipped[i, j]), float(scores[i, j])))
    return matches


def _assign(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one assignment of highest total score. One row or one column needs no solver (and
    no import of scipy.optimize, half a second)."""
    if min(scores.shape) == 1:
        best = int(np.argmax(scores))
        i, j = np.unravel_index(best, scores.shape)
        return np.array([i]), np.array([j])
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(-scores)


def _scores(
    s_group: list[Entry],
    r_group: list[Entry],
    s_sketches: Sketcher,
    r_sketches: Sketcher,
    compatible: Callable[[Entry, Entry], bool],
) -> tuple[np.ndarray, np.ndarray]:
    """Similarity of every pair (the better of as-stored and transposed) and whether it was transposed."""
    r_units = [r_sketches.get(r.view) for r in r_group]
    r_shapes = [r.view.shape for r in r_group]
    scores = np.full((len(s_group), len(r_group)), _NEVER)
    flipped = np.zeros(scores.shape, dtype=bool)
    for orientation in (False, True):
        for i, s in enumerate(s_group):
            shape = s.view.shape[::-1] if orientation else s.view.shape
            if orientation and len(shape) != 2:
                continue
            cols = [j for j, r_shape in enumerate(r_shapes) if r_shape == shape and compatible(s, r_group[j])]
            if not cols:
                continue
            row = similarity([s_sketches.get(s.view, transposed=orientation)], [r_units[j] for j in cols])[0]
            better = row > scores[i, cols]
            scores[i, cols] = np.where(better, row, scores[i, cols])
            flipped[i, cols] = np.where(better, orientation, flipped[i, cols])
    return scores, flipped
