"""Embedding and head rows of two vocabularies, paired row by row when the vocabulary changed.

A vocabulary extended (rows appended for new tokens) or pruned (a subset of rows kept) changes the
row count of the embedding and the head, so the tensors no longer pair by shape; yet every kept row
may be the parent's row. Rows are paired, in order of preference: by token string when both models
carry a tokenizer (the pairing does not look at the weights, so the tests on it keep their nulls);
else by value: rows whose bytes occur once in each model pair exactly, the rest pair with their
nearest row when it stands out from chance for that many comparisons (a bar an unrelated model's
rows do not reach); else by position (the shorter vocabulary a prefix of the longer).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..arch import Entry
from ..io.base import Checkpoint
from ..io.views import TensorView
from .layermap import chance_bound

ROLES = {"embed.weight", "head.weight"}
MIN_ROWS = 16  # fewer paired rows than this is no vocabulary alignment
NEAREST_BUDGET = 4e9  # multiply-adds for the nearest-row search; beyond it, fall back to the prefix
BLOCK = 4096  # rows hashed or searched at a time


@dataclass(frozen=True)
class RowAlignment:
    """Which suspect row is which reference row, and how that was decided."""

    method: str  # tokens | rows (exact, then nearest) | prefix
    suspect_rows: np.ndarray
    reference_rows: np.ndarray
    suspect_total: int
    reference_total: int

    @property
    def kept(self) -> int:
        return int(self.suspect_rows.size)

    @property
    def added(self) -> int:
        return self.suspect_total - self.kept

    @property
    def dropped(self) -> int:
        return self.reference_total - self.kept

    @property
    def kind(self) -> str:
        """``vocab-extended`` (rows only added), ``vocab-pruned`` (only dropped), else ``vocab-replaced``."""
        if not self.dropped:
            return "vocab-extended"
        return "vocab-pruned" if not self.added else "vocab-replaced"

    def describe(self) -> str:
        return f"rows paired by {self.method}: {self.kept:,} kept, {self.added:,} added, {self.dropped:,} dropped"


@dataclass(frozen=True)
class RowsView(TensorView):
    """Some rows of a matrix view, in a given order (a vocabulary's kept tokens)."""

    rows: tuple[int, ...] = ()
    note: str = ""

    def load(self) -> np.ndarray:
        return np.asarray(super().load())[np.asarray(self.rows, dtype=np.int64)]

    @property
    def key(self) -> tuple:
        return (*super().key, self.rows)

    @property
    def transform(self) -> str:
        return ", ".join(t for t in (super().transform, self.note) if t)


def rows_view(view: TensorView, rows: np.ndarray, note: str) -> RowsView:
    return RowsView(
        view.checkpoint,
        view.name,
        (int(rows.size), *view.shape[1:]),
        view.label,
        view.ops,
        view.parts,
        rows=tuple(int(r) for r in rows),
        note=note,
    )


class Vocabularies:
    """The two models' token -> id tables, read once and only if a vocabulary changed."""

    def __init__(self, suspect: Checkpoint, reference: Checkpoint) -> None:
        self._models = (suspect, reference)

    @cached_property
    def pair(self) -> tuple[dict[str, int], dict[str, int]] | None:
        from ..metadata import tokenizer_of

        found = [tokenizer_of(m) for m in self._models]
        if any(t is None or not t.vocab for t in found):
            return None
        return found[0].vocab, found[1].vocab


def align_rows(s: Entry, r: Entry, vocabularies: Vocabularies) -> RowAlignment | None:
    """The row pairing of an embedding or head whose vocabulary changed; None if this pair is not one
    (another role, other widths) or too few rows pair."""
    a, b = s.view.shape, r.view.shape
    if s.role != r.role or s.role not in ROLES or len(a) != 2 or len(b) != 2 or a[1] != b[1] or a[0] == b[0]:
        return None
    found = None
    if vocabularies.pair is not None:
        found = _by_tokens(*vocabularies.pair, a[0], b[0])
    else:
        x, y = s.view.load(), r.view.load()
        found = _by_value(x, y)
        if found is None or found[1].size < min(a[0], b[0]) // 2:
            n = min(a[0], b[0])
            found = ("prefix", np.arange(n), np.arange(n))
    if found is None or found[1].size < MIN_ROWS:
        return None
    method, s_rows, r_rows = found
    return RowAlignment(method, s_rows, r_rows, a[0], b[0])


def _by_tokens(
    s_vocab: dict[str, int], r_vocab: dict[str, int], s_rows: int, r_rows: int
) -> tuple[str, np.ndarray, np.ndarray] | None:
    pairs = sorted(
        (i, r_vocab[t]) for t, i in s_vocab.items() if t in r_vocab and i < s_rows and r_vocab[t] < r_rows
    )
    if not pairs:
        return None
    s_idx, r_idx = np.array(pairs, dtype=np.int64).T
    # Two tokens of one model at one id (added tokens listed twice) would pair a row twice.
    keep = _first_occurrence(s_idx) & _first_occurrence(r_idx)
    return "tokens", s_idx[keep], r_idx[keep]


def _first_occurrence(idx: np.ndarray) -> np.ndarray:
    mask = np.zeros(idx.size, dtype=bool)
    mask[np.unique(idx, return_index=True)[1]] = True
    return mask


def _by_value(x: np.ndarray, y: np.ndarray) -> tuple[str, np.ndarray, np.ndarray] | None:
    """Exact rows by hash (rows that occur once on each side), then nearest rows for the rest."""
    s_hash, r_hash = _row_hashes(x), _row_hashes(y)
    r_unique = _unique_rows(r_hash)
    s_unique = _unique_rows(s_hash)
    pairs = [(i, r_unique[h]) for h, i in s_unique.items() if h in r_unique]
    s_taken = {i for i, _ in pairs}
    r_taken = {j for _, j in pairs}
    s_rest = np.array([i for i in range(x.shape[0]) if i not in s_taken], dtype=np.int64)
    r_rest = np.array([j for j in range(y.shape[0]) if j not in r_taken], dtype=np.int64)
    if s_rest.size and r_rest.size and s_rest.size * r_rest.size * x.shape[1] <= NEAREST_BUDGET:
        pairs += _nearest(x, y, s_rest, r_rest)
    if not pairs:
        return None
    s_idx, r_idx = np.array(sorted(pairs), dtype=np.int64).T
    return "rows", s_idx, r_idx


def _row_hashes(x: np.ndarray) -> list[bytes]:
    out = []
    for start in range(0, x.shape[0], BLOCK):
        block = np.ascontiguousarray(x[start : start + BLOCK])
        out += [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in block]
    return out


def _unique_rows(hashes: list[bytes]) -> dict[bytes, int]:
    """Hash -> row for rows whose bytes occur once (repeated rows, e.g. all-zero unused tokens, say nothing)."""
    seen: dict[bytes, int] = {}
    repeated: set[bytes] = set()
    for i, h in enumerate(hashes):
        if h in seen:
            repeated.add(h)
        seen[h] = i
    return {h: i for h, i in seen.items() if h not in repeated}


def _nearest(x: np.ndarray, y: np.ndarray, s_rest: np.ndarray, r_rest: np.ndarray) -> list[tuple[int, int]]:
    """Mutual nearest rows by centred cosine, kept only above the chance bound for this many comparisons."""
    ys = _unit_rows(y[r_rest])
    bound = chance_bound(s_rest.size, r_rest.size, 1 / math.sqrt(max(x.shape[1] - 1, 1)))
    best_r = np.empty(s_rest.size, dtype=np.int64)
    best_v = np.empty(s_rest.size)
    best_s = np.full(r_rest.size, -1, dtype=np.int64)
    best_sv = np.full(r_rest.size, -np.inf)
    for start in range(0, s_rest.size, BLOCK):
        sims = _unit_rows(x[s_rest[start : start + BLOCK]]) @ ys.T
        best_r[start : start + BLOCK] = sims.argmax(axis=1)
        best_v[start : start + BLOCK] = sims.max(axis=1)
        col_best = sims.max(axis=0)
        better = col_best > best_sv
        best_sv[better] = col_best[better]
        best_s[better] = start + sims.argmax(axis=0)[better]
    return [
        (int(s_rest[i]), int(r_rest[j]))
        for i, j in enumerate(best_r)
        if best_v[i] >= bound and best_s[j] == i
    ]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
