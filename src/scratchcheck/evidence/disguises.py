"""Undo function-preserving disguises before comparing: folded norm gains and a rotated residual stream.

Folding RMSNorm gains into the next linear layer (gains then exactly 1.0) and rotating the residual
stream by one orthogonal matrix R (embeddings ``E R^T``, matrices that read the stream ``W R^T``,
matrices that write it ``R W``) leave the function unchanged and drive element-wise correlation to
zero, so a copy disguised this way looked independent. When the suspect's gains are all exactly 1
and the reference's are not, the reference's gains are folded into the matrices that read after
them, and the reference's residual basis is rotated onto the suspect's by orthogonal Procrustes on
the embedding rows of shared tokens (by token string when both models carry a tokenizer, else by
row index for equal vocabularies). The rotation is fitted on one half of a sample of shared tokens
and its quality measured on the other half (the "residual r after alignment" reported).

Calibration. The alignment looks at the embeddings only, and embeddings and head (rows indexed by
token, which any two models of one tokenizer share) are then set aside as evidence: fitted to
agree, they would agree. The matrices that stay in the tests have one axis in the residual basis
and one axis of units or head dimensions, which every training run labels arbitrarily, so their
coordinate tests keep the exact row (or column) rotation null whatever the residual alignment did:
two independent models that share a tokenizer stay independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..align import Alignment, TensorPair
from ..align.gqa import SIBLING, PooledHeadsView, regroup
from ..align.vocab import Vocabularies
from ..arch import ModelLayout
from ..io.views import TensorView

ROTATED = 0.1  # a fitted rotation this far from the identity counts as a rotated stream
MAX_TOKENS = 16384  # shared tokens sampled for the fit and the held-out check together
NORM_OF = {"attn.": "norm.attn.weight", "mlp.": "norm.mlp.weight", "expert.": "norm.mlp.weight"}
NORM_OF |= {"shared_expert.": "norm.mlp.weight", "router.": "norm.mlp.weight", "head.": "norm.final.weight"}
READS = ("attn.q.", "attn.k.", "attn.v.", "mlp.gate.", "mlp.up.", "expert.gate.", "expert.up.")
READS += ("shared_expert.gate.", "shared_expert.up.", "router.", "head.")
WRITES = ("attn.o.", "mlp.down.", "expert.down.", "shared_expert.down.")
FIT_ON_TOKENS = ("embed.", "head.")  # rows indexed by token: not evidence once the basis is fitted on them


@dataclass(frozen=True)
class Disguise:
    """What was undone, and how well the rotation carries held-out tokens."""

    folded_norms: int  # reference gain vectors folded into the matrices after them
    rotation: bool
    tokens_fit: int = 0
    tokens_held_out: int = 0
    held_out_r: float = float("nan")  # Pearson of held-out embedding rows after the rotation
    paired_by: str = ""  # tokens | row index
    distance: float = 0.0  # ||M - I||_F / sqrt(2 d): 0 for no rotation, about 1 for a random one

    @property
    def rotated(self) -> bool:
        """The fitted rotation is far from the identity: the residual stream was really rotated."""
        return self.rotation and self.distance > ROTATED

    def describe(self) -> str:
        parts = [f"{self.folded_norms} reference norm gain vector(s) folded into the next layer"]
        if self.rotation:
            parts.append(
                f"reference residual stream {'rotated' if self.rotated else 'aligned (close to the identity)'} "
                f"onto the suspect's (orthogonal Procrustes on "
                f"{self.tokens_fit:,} shared tokens by {self.paired_by}; residual r after alignment "
                f"{self.held_out_r:.4f} on {self.tokens_held_out:,} held-out tokens)"
            )
        return "; ".join(parts)


@dataclass(frozen=True)
class AlignedView(TensorView):
    """A reference matrix seen in the suspect's basis: gains folded into its columns, then rotated."""

    gain: np.ndarray | None = None  # multiplies the columns (the residual axis of a reading matrix)
    rotation: np.ndarray | None = None  # M: reading matrices W M, writing matrices M^T W
    writes: bool = False
    tag: str = ""
    source: TensorView | None = None  # a view that reads in its own way (pooled heads, kept rows)

    def load(self) -> np.ndarray:
        x = np.asarray(super().load() if self.source is None else self.source.load(), dtype=np.float32)
        if self.gain is not None:
            x = x * self.gain[None, :]
        if self.rotation is not None:
            x = self.rotation.T @ x if self.writes else x @ self.rotation
        return x

    @property
    def key(self) -> tuple:
        return (*(super().key if self.source is None else self.source.key), self.tag)

    @property
    def numel(self) -> int:
        return super().numel if self.source is None else self.source.numel

    @property
    def nbytes(self) -> int:
        return super().nbytes if self.source is None else self.source.nbytes

    @property
    def transform(self) -> str:
        return ", ".join(t for t in (super().transform, self.tag) if t)


def undo(
    suspect: ModelLayout, reference: ModelLayout, alignment: Alignment
) -> tuple[Alignment, Disguise | None]:
    """The alignment with reference matrices brought into the suspect's basis where the suspect's
    norm gains were folded (all exactly 1, the reference's not); unchanged otherwise."""
    s_norms = _gains(suspect)
    r_norms = _gains(reference)
    if not s_norms or not r_norms or not all(_ones(v.load()) for v in s_norms.values()):
        return alignment, None
    if all(_ones(v.load()) for v in r_norms.values()):
        return alignment, None
    fit = _rotation(suspect, reference)
    rotation, held = (fit[0], fit[1:]) if fit is not None else (None, None)
    tag = "gains folded" + (", rotated into the suspect's residual basis" if rotation is not None else "")
    pairs: list[TensorPair] = []
    for pair in alignment.pairs:
        if rotation is not None and isinstance(pair.reference, PooledHeadsView):
            pair = _regrouped(pair, suspect, reference, r_norms, rotation)
        pairs.append(_aligned(pair, r_norms, rotation, tag) if pair.learned else pair)
    disguise = Disguise(len(r_norms), rotation is not None, *(held or ()))
    return replace(alignment, pairs=pairs, disguise=disguise), disguise


def _aligned(pair: TensorPair, r_norms: dict, rotation: np.ndarray | None, tag: str) -> TensorPair:
    role, view = pair.role, pair.reference
    if role.startswith("norm."):  # folded away on both sides: no evidence left in them
        return replace(pair, learned=False, excluded_reason="norm gain folded into the next layer")
    if rotation is not None and role.startswith(FIT_ON_TOKENS):
        return replace(pair, learned=False, excluded_reason="rows fitted by the residual alignment")
    reads, writes = role.startswith(READS), role.startswith(WRITES)
    if len(view.shape) != 2 or not (reads or writes):
        return pair
    norm = next((NORM_OF[p] for p in NORM_OF if role.startswith(p)), None)
    gain = (
        r_norms.get((norm, pair.reference_layer if norm != "norm.final.weight" else None)) if reads else None
    )
    aligned = AlignedView(
        view.checkpoint,
        view.name,
        view.shape,
        view.label,
        view.ops,
        view.parts,
        gain=np.asarray(gain.load(), dtype=np.float32) if gain is not None else None,
        rotation=rotation,
        writes=writes,
        tag=tag,
        source=None if type(view) is TensorView else view,
    )
    return replace(
        pair, reference=aligned, transform=", ".join(t for t in (pair.transform, "reference " + tag) if t)
    )


def _regrouped(
    pair: TensorPair, suspect: ModelLayout, reference: ModelLayout, r_norms: dict, rotation: np.ndarray
) -> TensorPair:
    """A GQA-pooled pair with its head groups fitted again on the sibling projections in the aligned
    basis (the reference's gains folded, its stream rotated onto the suspect's)."""
    if len(pair.reference.groups) < 2:  # one key/value head: nothing to match
        return pair
    role = SIBLING[pair.role]
    mine = next((e.view for e in suspect.entries if e.role == role and e.layer == pair.layer), None)
    theirs = next(
        (e.view for e in reference.entries if e.role == role and e.layer == pair.reference_layer), None
    )
    if mine is None or theirs is None or len(theirs.shape) != 2:
        return pair
    r = np.asarray(theirs.load(), dtype=np.float32)
    gain = r_norms.get(("norm.attn.weight", pair.reference_layer))
    if gain is not None:
        r = r * np.asarray(gain.load(), dtype=np.float32)[None, :]
    return replace(pair, reference=regroup(pair.reference, np.asarray(mine.load()), r @ rotation))


def _gains(model: ModelLayout) -> dict[tuple[str, int | None], TensorView]:
    """RMSNorm/LayerNorm gain vectors by (role, layer)."""
    return {
        (e.role, e.layer): e.view
        for e in model.entries
        if e.role in ("norm.attn.weight", "norm.mlp.weight", "norm.final.weight") and len(e.view.shape) == 1
    }


def _ones(x: np.ndarray) -> bool:
    return bool(np.all(np.asarray(x) == 1.0))


def _rotation(
    suspect: ModelLayout, reference: ModelLayout
) -> tuple[np.ndarray, int, int, float, str, float] | None:
    """M with ``E_suspect ~ E_reference M`` from half of the shared tokens; the other half's Pearson."""
    s_embed = next((e.view for e in suspect.entries if e.role == "embed.weight"), None)
    r_embed = next((e.view for e in reference.entries if e.role == "embed.weight"), None)
    if s_embed is None or r_embed is None or s_embed.shape[1:] != r_embed.shape[1:]:
        return None
    vocabularies = Vocabularies(suspect.checkpoint, reference.checkpoint).pair
    if vocabularies is not None:
        s_vocab, r_vocab = vocabularies
        shared = [(i, r_vocab[t]) for t, i in s_vocab.items() if t in r_vocab]
        shared = [(i, j) for i, j in shared if i < s_embed.shape[0] and j < r_embed.shape[0]]
        how = "token string"
    elif s_embed.shape == r_embed.shape:
        shared = [(i, i) for i in range(s_embed.shape[0])]
        how = "row index"
    else:
        return None
    if len(shared) < 2 * s_embed.shape[1]:  # fewer tokens than dimensions on either half: no fit
        return None
    rng = np.random.default_rng(len(shared))  # the split depends on the count only, never on values
    picked = np.array(shared, dtype=np.int64)[rng.permutation(len(shared))[:MAX_TOKENS]]
    half = picked.shape[0] // 2
    s_all, r_all = s_embed.load(), r_embed.load()
    fit, test = picked[:half], picked[half:]
    a = np.asarray(r_all[fit[:, 1]], dtype=np.float64)
    b = np.asarray(s_all[fit[:, 0]], dtype=np.float64)
    u, _, vt = np.linalg.svd(a.T @ b)
    rotation = (u @ vt).astype(np.float32)
    held_s = np.asarray(s_all[test[:, 0]], dtype=np.float64)
    held_r = np.asarray(r_all[test[:, 1]], dtype=np.float64) @ rotation
    r = float(np.corrcoef(held_s.ravel(), held_r.ravel())[0, 1])
    distance = float(np.linalg.norm(rotation - np.eye(rotation.shape[0]))) / math.sqrt(2 * rotation.shape[0])
    return (
        rotation,
        int(fit.shape[0]),
        int(test.shape[0]),
        r if math.isfinite(r) else float("nan"),
        how,
        distance,
    )


RESCALE_ROLES = ("mlp.up.weight", "attn.v.weight")  # rows whose scale the next matrix can undo
RESCALED_SPREAD = 0.25  # sd of log row-norm ratios; fine-tunes of the bench stay near 0.05
MAX_RESCALE_PAIRS = 2
SAMPLE_ROWS = 256  # rows read per matrix (a memory-mapped view reads only their pages)
# Rescaling leaves a row's direction alone; fine-tunes spread row norms only as far as they turn rows
# (bench fine-tunes: median cosine 0.83 with sd 0.15, 0.44 with sd 0.33).
ROWS_AGREE = 0.8


def rescaled(alignment: Alignment, component: str) -> float | None:
    """The spread (sd of the log ratio) of per-unit scales between suspect and reference rows where
    rows point the same way but their norms were rescaled (MLP up rows x c with down columns x 1/c,
    value rows with output columns likewise: the function is unchanged); None if not rescaled."""
    found = []
    for role in RESCALE_ROLES:
        pairs = [
            p
            for p in alignment.pairs
            if p.learned and p.suspect_component == component and p.role == role and len(p.suspect.shape) == 2
        ]
        spreads = [s for s in map(_scale_spread, pairs[:MAX_RESCALE_PAIRS]) if s is not None]
        if spreads and min(spreads) >= RESCALED_SPREAD:
            found.append(float(np.median(spreads)))
    return max(found) if found else None


def _scale_spread(pair: TensorPair) -> float | None:
    """sd of log(|suspect row| / |reference row|) where the rows point the same way."""
    rows = np.unique(
        np.linspace(0, pair.suspect.shape[0] - 1, min(SAMPLE_ROWS, pair.suspect.shape[0])).astype(int)
    )
    s, r = (np.asarray(v.load()[rows], dtype=np.float64) for v in (pair.suspect, pair.reference))
    ns, nr = np.linalg.norm(s, axis=1), np.linalg.norm(r, axis=1)
    ok = (ns > 0) & (nr > 0)
    if ok.sum() < 8:
        return None
    cos = np.einsum("ij,ij->i", s[ok], r[ok]) / (ns[ok] * nr[ok])
    if np.median(cos) < ROWS_AGREE:  # rows changed too much for their norms to say anything
        return None
    return float(np.std(np.log(ns[ok] / nr[ok])))
