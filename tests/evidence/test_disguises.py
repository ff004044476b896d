"""Folded norm gains and a rotated residual stream are undone before the tests, without manufacturing
evidence between independent models that share a vocabulary."""

import numpy as np
import pytest

from scratchcheck import compare
from scratchcheck import synthetic as S
from scratchcheck.align import align
from scratchcheck.arch import layout
from scratchcheck.evidence.disguises import undo
from scratchcheck.io import open_model

DECODER = {"layers": 4, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 512}


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    weights = S.llama_decoder(1, **DECODER)
    return weights, S.save(weights, tmp_path_factory.mktemp("parent"))


def test_the_rotation_is_found_and_measured_on_held_out_tokens(parent, tmp_path):
    disguised = S.rotate_residual(parent[0], seed=1)
    with open_model(S.save(disguised, tmp_path / "rot")) as s, open_model(parent[1]) as r:
        a, b = layout(s), layout(r)
        aligned, disguise = undo(a, b, align(a, b))
    assert disguise.rotated and disguise.held_out_r > 0.999
    assert disguise.tokens_fit == disguise.tokens_held_out == 256 and disguise.paired_by == "row index"
    up = next(p for p in aligned.pairs if p.role == "mlp.up.weight" and p.layer == 2)
    assert np.allclose(up.suspect.load(), up.reference.load(), atol=1e-5)
    assert {p.excluded_reason for p in aligned.pairs if p.role in ("embed.weight", "head.weight")} == {
        "rows fitted by the residual alignment"
    }


def test_an_undisguised_pair_is_left_alone(parent, tmp_path):
    with open_model(S.save(S.fine_tune(parent[0], 0.1), tmp_path / "ft")) as s, open_model(parent[1]) as r:
        a, b = layout(s), layout(r)
        found = align(a, b)
        assert undo(a, b, found) == (found, None)


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (5, "independent")])
def test_a_rotated_copy_is_derived_and_a_rotated_stranger_is_not(parent, tmp_path, seed, truth):
    disguised = S.rotate_residual(S.llama_decoder(seed, **DECODER), seed=1)
    report = compare(S.save(disguised, tmp_path / "rot"), [parent[1]])
    lm = next(c for c in report.components if c.component_kind == "language_model")
    assert lm.verdict == truth
    undone = next(t for t in lm.tests if t.name == "disguise undone")
    assert "rotated onto the suspect's" in undone.detail["undone"]
    if truth == "derived":
        assert lm.kind == "rotated" and lm.p_value < 1e-6
        assert undone.detail["residual_r_after_alignment"] > 0.999


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (3, "independent")])
def test_a_rotated_gqa_conversion_is_read_through_its_pooled_heads(tmp_path, seed, truth):
    """The aligned reference keeps the pooled view's reading (it crashed on mismatched shapes), and
    groups of arbitrary heads are matched in the aligned basis (the record says which)."""
    from scratchcheck import structural

    mha = DECODER | {"heads": 8, "kv_heads": 8}
    parent = S.save(S.llama_decoder(1, **mha), tmp_path / "mha", S.llama_config(**mha))
    shuffled = [5, 0, 7, 2, 3, 6, 1, 4]  # groups {0, 2, 5, 7} and {1, 3, 4, 6}
    converted = structural.to_gqa(S.llama_decoder(seed, **mha), 2, heads=8, order=shuffled)
    converted = S.rotate_residual(converted, seed=4)
    report = compare(S.save(converted, tmp_path / "gqa", S.llama_config(**(mha | {"kv_heads": 2}))), [parent])
    lm = next(c for c in report.components if c.component_kind == "language_model")
    assert lm.verdict == truth
    pooled = [t for t in report.tensors if t.paired_by == "heads-pooled"]
    assert len(pooled) == 2 * 4 and all("gains folded" in t.transform for t in pooled)
    record = next(t for t in lm.tests if t.name == "kv heads pooled")
    if truth == "derived":
        assert lm.kind == "rotated" and min(t.pearson for t in pooled) > 0.999
        assert (
            record.detail["groups"]
            == "key/value heads pooled (matched): kv 0 \u2190 {0, 2, 5, 7}, kv 1 \u2190 {1, 3, 4, 6}"
        )
    else:
        assert "(contiguous)" in record.detail["groups"]
