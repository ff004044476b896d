"""Signs in the weights of a transformation the tests cannot see; with one, "independent" is not said.

The coordinate tests and unit matching work in the stored residual basis. Folding norm gains into
the next linear layers and rotating the residual stream by any orthogonal matrix leaves the function
unchanged and hides a copy from both. Such a disguise leaves traces that cost nothing to check: norm
gains that are all exactly 1.0 (folded) where the reference's are not, and an output head of its own
that is the suspect's own embedding matrix with its columns rescaled, where the reference ties the two
(folding the final norm into a tied head unties it exactly that way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arch import ModelLayout

# Components whose tests work in the residual basis of the language model.
_RESIDUAL_KINDS = {"language_model", "embeddings", "head", "other"}


@dataclass(frozen=True)
class ModelSigns:
    """What the checks read once per suspect/reference pair, whatever the component."""

    reference_gains_all_ones: bool
    rescaled_head: bool  # the suspect's head is its embeddings rescaled, where the reference ties them


def model_signs(suspect: ModelLayout, reference: ModelLayout) -> ModelSigns:
    r_norms = [e for e in reference.entries if _is_gain(e.role)]
    s_head, s_embed = _role(suspect, "head.weight"), _role(suspect, "embed.weight")
    tied_reference = _role(reference, "head.weight") is None and _role(reference, "embed.weight") is not None
    return ModelSigns(
        reference_gains_all_ones=not r_norms or all(_all_ones(e.view) for e in r_norms),
        rescaled_head=tied_reference
        and s_head is not None
        and s_embed is not None
        and _rescaled_copy(s_head, s_embed),
    )


def blind_spots(component: str, suspect: ModelLayout, signs: ModelSigns) -> list[str]:
    """Reasons why an 'independent' verdict for ``component`` could not be defended."""
    if suspect.kind_of(component) not in _RESIDUAL_KINDS:
        return []
    out = []
    s_norms = [e for e in suspect.entries if e.component == component and _is_gain(e.role)]
    folded = [e for e in s_norms if _all_ones(e.view)]
    if len(folded) >= 2 and len(folded) == len(s_norms) and not signs.reference_gains_all_ones:
        out.append(
            f"all {len(folded)} norm gains of the suspect are exactly 1.0 where the reference's are not: gains "
            "folded into the next layers allow a rotation of the residual stream, which the coordinate and "
            "unit-matching tests cannot see"
        )
    if signs.rescaled_head:
        out.append(
            "the suspect's output head is its own token embedding matrix with rescaled columns, where the "
            "reference ties the two: a final norm folded into a tied head, a sign of a function-preserving "
            "change of basis"
        )
    return out


def _role(model: ModelLayout, role: str):
    return next((e.view for e in model.entries if e.role == role), None)


SAMPLE_ROWS = 4096


def _rescaled_copy(head, embed) -> bool:
    """Every column of ``head`` proportional to the same column of ``embed`` (on sampled rows)."""
    if head.shape != embed.shape or len(head.shape) != 2 or head.shape[0] < 8:
        return False
    rows = np.unique(np.linspace(0, head.shape[0] - 1, min(SAMPLE_ROWS, head.shape[0])).astype(int))
    h = np.asarray(head.load()[rows], dtype=np.float64)
    e = np.asarray(embed.load()[rows], dtype=np.float64)
    den = np.linalg.norm(h, axis=0) * np.linalg.norm(e, axis=0)
    cos = np.abs(np.einsum("ij,ij->j", h, e)) / np.where(den > 0, den, 1.0)
    return bool(np.median(cos) > 0.999)


def _is_gain(role: str) -> bool:
    return role.startswith("norm.") and role.endswith(".weight")


def _all_ones(view) -> bool:
    values = np.asarray(view.load())
    return bool(values.size) and bool(np.all(values == 1))
