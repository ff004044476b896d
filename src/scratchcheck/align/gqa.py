"""Key/value heads of a grouped-query model paired with the mean of the reference heads they pool.

GQA conversion (Ainslie et al. 2023) turns a multi-head checkpoint into grouped-query attention by
mean-pooling the key and value heads of each group into one, then trains a little. The converted
``k_proj`` / ``v_proj`` have ``kv_heads x head_dim`` rows where the parent has ``heads x head_dim``,
so they no longer pair by shape; each suspect key/value head pairs instead with the mean of its
group of reference heads, read through a view (``PooledHeadsView``) that pools them.

Groups are contiguous heads (the paper's construction and the usual converters'), unless a
matching of suspect heads to reference head groups stands out from chance. That matching is fitted
on the *sibling* tensor (values for keys, keys for values; a conversion pools both alike) and never
on the tensor it pairs: two independent models' values are independent given both models' keys, so
the coordinate test on the pooled pair keeps its null whichever grouping the sibling chose. The
matching must also beat the same search run with the sibling reference's residual basis permuted
(a prediction test over ``NULL_DRAWS`` draws), so an unrelated model keeps the contiguous groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..arch import Entry
from ..evidence.stats import prediction_test
from ..io.views import TensorView

# Role -> the projection its grouping is fitted on: the other of keys and values (pooled alike).
SIBLING = {"attn.k.weight": "attn.v.weight", "attn.v.weight": "attn.k.weight"}
SIBLING |= {"attn.k.bias": "attn.v.weight", "attn.v.bias": "attn.k.weight"}
NULL_DRAWS = 19
MATCH_LOG_P = math.log(1e-3)  # a matched grouping must beat the permuted search this clearly

Groups = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class PooledHeadsView(TensorView):
    """A key or value projection with its heads mean-pooled in ``groups`` (reference head indices)."""

    head_dim: int = 0
    groups: Groups = ()
    note: str = ""

    def load(self) -> np.ndarray:
        x = np.asarray(super().load(), dtype=np.float32)
        heads = x.reshape(-1, self.head_dim, *x.shape[1:])
        return np.concatenate([heads[list(g)].mean(axis=0) for g in self.groups])

    @property
    def key(self) -> tuple:
        return (*super().key, self.head_dim, self.groups)

    @property
    def numel(self) -> int:
        """Every pooled head was compared, not only as many as the pooled view holds."""
        return super().numel * sum(len(g) for g in self.groups) // len(self.groups)

    @property
    def nbytes(self) -> int:
        return super().nbytes * sum(len(g) for g in self.groups) // len(self.groups)

    @property
    def transform(self) -> str:
        return ", ".join(t for t in (super().transform, self.note) if t)


@dataclass(frozen=True)
class HeadGroups:
    """Which reference heads each suspect key/value head pools, and how that was decided."""

    head_dim: int
    groups: Groups
    method: str  # contiguous | matched (on the sibling tensor, past its permutation null)

    def describe(self) -> str:
        spans = ", ".join(f"kv {g} \u2190 {_span(heads)}" for g, heads in enumerate(self.groups))
        return f"key/value heads pooled ({self.method}): {spans}"

    def view(self, reference: TensorView) -> PooledHeadsView:
        rows = len(self.groups) * self.head_dim
        return PooledHeadsView(
            reference.checkpoint,
            reference.name,
            (rows, *reference.shape[1:]),
            reference.label,
            reference.ops,
            reference.parts,
            head_dim=self.head_dim,
            groups=self.groups,
            note=self.describe(),
        )


def head_groups(s: Entry, r: Entry, sibling: tuple[Entry | None, Entry | None]) -> HeadGroups | None:
    """The pooling of a converted key/value projection ``s`` from the reference's ``r``; None if
    this pair is no GQA conversion (another role, other widths, head size unknown or not dividing).

    ``sibling``: the suspect's and reference's other projection of the same layer (v for k, k for
    v and for v's bias, v for k's bias)."""
    a, b = s.view.shape, r.view.shape
    head_dim = s.head_dim or r.head_dim
    if (
        s.role != r.role
        or s.role not in SIBLING
        or len(a) != len(b)
        or len(a) not in (1, 2)
        or a[1:] != b[1:]
        or not head_dim
        or a[0] % head_dim
        or b[0] % head_dim
    ):
        return None
    kv, heads = a[0] // head_dim, b[0] // head_dim
    if kv >= heads or heads % kv:
        return None
    contiguous = _contiguous(head_dim, kv, heads)
    mine, theirs = sibling
    if kv < 2 or mine is None or theirs is None or not _projections(mine.view.shape, theirs.view.shape, a, b):
        return contiguous
    return _fitted(contiguous, mine.view.load(), theirs.view.load())


def regroup(view: PooledHeadsView, mine: np.ndarray, theirs: np.ndarray) -> PooledHeadsView:
    """``view`` with its groups fitted again on sibling projections now seen in one residual basis
    (``theirs`` rotated onto ``mine``): a rotated residual stream hides the matching from ``align``,
    which then fell back to contiguous groups."""
    kv, heads = len(view.groups), sum(len(g) for g in view.groups)
    if kv < 2 or not _projections(mine.shape, theirs.shape, (kv * view.head_dim,), (heads * view.head_dim,)):
        return view
    groups = _fitted(_contiguous(view.head_dim, kv, heads), mine, theirs)
    return view if groups.groups == view.groups else groups.view(view)


def _contiguous(head_dim: int, kv: int, heads: int) -> HeadGroups:
    size = heads // kv
    return HeadGroups(
        head_dim, tuple(tuple(range(g * size, (g + 1) * size)) for g in range(kv)), "contiguous"
    )


def _fitted(contiguous: HeadGroups, mine: np.ndarray, theirs: np.ndarray) -> HeadGroups:
    """The groups matched on the sibling projections where the matching beats its null, else contiguous."""
    kv, heads = len(contiguous.groups), sum(len(g) for g in contiguous.groups)
    matched = _matched(mine, theirs, contiguous.head_dim, kv, heads)
    if matched is None or set(matched) == set(contiguous.groups):
        return contiguous
    return HeadGroups(contiguous.head_dim, matched, "matched")


def _projections(
    mine: tuple[int, ...], theirs: tuple[int, ...], a: tuple[int, ...], b: tuple[int, ...]
) -> bool:
    """The sibling pair are matrices with the pooled pair's rows and one residual width."""
    return len(mine) == len(theirs) == 2 and mine[1] == theirs[1] and (mine[0], theirs[0]) == (a[0], b[0])


def _matched(s: np.ndarray, r: np.ndarray, head_dim: int, kv: int, heads: int) -> Groups | None:
    """Groups from a balanced assignment of reference heads to suspect heads on head-block Pearson,
    kept only where the matched similarity beats the same search with the reference's residual
    basis (its columns) permuted."""
    s_heads = _centred(s, head_dim)
    r_heads = _centred(r, head_dim)
    observed, groups = _best_groups(s_heads, r_heads, kv, heads)
    rng = np.random.default_rng(0)
    null = [
        _best_groups(s_heads, r_heads[:, :, rng.permutation(r.shape[1])], kv, heads)[0]
        for _ in range(NULL_DRAWS)
    ]
    return groups if prediction_test(observed, null).log_p < MATCH_LOG_P else None


def _centred(x: np.ndarray, head_dim: int) -> np.ndarray:
    """[heads, head_dim, columns], each head block centred and scaled to unit length."""
    blocks = np.asarray(x, dtype=np.float64).reshape(-1, head_dim, x.shape[1])
    blocks = blocks - blocks.mean(axis=(1, 2), keepdims=True)
    norms = np.sqrt((blocks**2).sum(axis=(1, 2), keepdims=True))
    return blocks / np.where(norms > 0, norms, 1.0)


def _best_groups(s_heads: np.ndarray, r_heads: np.ndarray, kv: int, heads: int) -> tuple[float, Groups]:
    """Each reference head assigned to one suspect head, ``heads / kv`` per suspect head, maximising
    the summed head-block similarity; the mean matched similarity and the groups."""
    from scipy.optimize import linear_sum_assignment

    similarity = np.einsum("gij,hij->gh", s_heads, r_heads)
    slots = np.repeat(similarity, heads // kv, axis=0)  # one row per place in a group
    rows, cols = linear_sum_assignment(-slots)
    owner = rows // (heads // kv)
    groups = tuple(tuple(sorted(int(h) for h in cols[owner == g])) for g in range(kv))
    return float(slots[rows, cols].mean()), groups


def _span(heads: tuple[int, ...]) -> str:
    contiguous = heads == tuple(range(heads[0], heads[-1] + 1))
    if contiguous and len(heads) > 1:
        return f"{heads[0]}\u2013{heads[-1]}"
    return "{" + ", ".join(map(str, heads)) + "}"
