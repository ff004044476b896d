"""Structural derivations end to end through ``compare``: each found with its kind and what it found,
and each control (the same construction from an independent model) left independent."""

import math

import pytest

from scratchcheck import compare, structural
from scratchcheck import synthetic as S
from scratchcheck.evidence.structure import UNFITTED_ROTATION

DECODER = {"layers": 8, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 128}
SOLAR = list(range(6)) + list(range(2, 8))  # depth up-scaling: 8 layers -> 12


def _lm(report):
    return next(c for c in report.components if c.component_kind == "language_model")


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    return S.save(S.llama_decoder(1, **DECODER), tmp_path_factory.mktemp("parent"))


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (3, "independent")])
def test_depth_upscaled_model_is_derived_with_its_map(parent, tmp_path, seed, truth):
    upscaled = S.fine_tune(structural.stack_layers(S.llama_decoder(seed, **DECODER), SOLAR), 0.3, seed=2)
    report = compare(S.save(upscaled, tmp_path / "up"), [parent])
    lm = _lm(report)
    assert lm.verdict == truth
    mapped = [t for t in lm.tests if t.name == "layer-map"]
    assert mapped  # depths differ: the run-map test is always run
    if truth == "derived":
        assert lm.kind == "depth-upscaled" and lm.p_value < 1e-6
        assert lm.coverage > 0.9
        assert (
            mapped[0].detail["map"] == "suspect 0\u20135 \u2190 reference 0\u20135, 6\u201311 \u2190 2\u20137"
        )
        assert mapped[0].detail["log_p"] < math.log(1e-2)


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (3, "independent")])
def test_extended_vocabulary_is_derived_with_rows_kept_and_added(parent, tmp_path, seed, truth):
    names = ["model.embed_tokens.weight", "lm_head.weight"]
    extended = S.fine_tune(structural.append_rows(S.llama_decoder(seed, **DECODER), names, 32), 0.2, seed=4)
    report = compare(S.save(extended, tmp_path / "ext"), [parent])
    embed = next(c for c in report.components if c.component_kind == "embeddings")
    assert embed.verdict == truth and embed.coverage == pytest.approx(128 / 160)
    if truth == "derived":
        assert embed.kind == "vocab-extended" and embed.p_value < 1e-6
        row = next(t for t in report.tensors if t.role == "embed.weight")
        assert "128 kept, 32 added, 0 dropped" in row.transform


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (3, "independent")])
def test_upcycled_moe_is_derived_from_the_dense_parent(parent, tmp_path, seed, truth):
    moe = S.fine_tune(structural.upcycle(S.llama_decoder(seed, **DECODER), 4), 0.3, seed=5)
    report = compare(S.save(moe, tmp_path / "moe"), [parent])
    lm = _lm(report)
    assert lm.verdict == truth
    if truth == "derived":
        assert lm.kind == "upcycled" and lm.p_value < 1e-6
        assert lm.coverage > 0.95  # every expert compared; only the routers are new
        assert {n.rsplit(".", 2)[-2] for n in lm.unpaired_suspect} == {"gate"}


@pytest.fixture(scope="module")
def second_parent(tmp_path_factory):
    return S.save(S.llama_decoder(2, **DECODER), tmp_path_factory.mktemp("second"))


def test_a_merge_of_two_parents_reports_both_weights(parent, second_parent, tmp_path):
    merged = structural.merge(S.llama_decoder(1, **DECODER), S.llama_decoder(2, **DECODER), 0.6)
    merged = S.fine_tune(merged, 0.05, seed=6)
    report = compare(S.save(merged, tmp_path / "merged"), [parent, second_parent])
    lm = _lm(report)
    assert lm.verdict == "derived" and lm.kind == "merged"
    record = next(t for t in lm.tests if t.name == "merge weights")
    (a, b), first = record.detail["weights"], lm.reference == str(parent)
    assert (a, b) == pytest.approx((0.6, 0.4) if first else (0.4, 0.6), abs=0.05)


def test_an_independent_model_is_no_merge_of_two_others(parent, second_parent, tmp_path):
    report = compare(S.save(S.llama_decoder(3, **DECODER), tmp_path / "other"), [parent, second_parent])
    assert _lm(report).verdict == "independent" and _lm(report).kind is None


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (3, "independent")])
def test_rescaled_units_are_derived_and_named(parent, tmp_path, seed, truth):
    rescaled = structural.rescale_units(S.fine_tune(S.llama_decoder(seed, **DECODER), 0.1, seed=7), 0.5)
    report = compare(S.save(rescaled, tmp_path / "rescaled"), [parent])
    lm = _lm(report)
    assert lm.verdict == truth
    if truth == "derived":
        assert lm.kind == "rescaled" and lm.p_value < 1e-6


def test_a_fine_tune_compared_with_its_base_and_a_sibling_is_no_merge(parent, tmp_path):
    base = S.llama_decoder(1, **DECODER)
    sibling = S.save(S.fine_tune(base, 0.05, seed=8), tmp_path / "sibling")
    report = compare(S.save(S.fine_tune(base, 0.1, seed=9), tmp_path / "child"), [parent, sibling])
    assert _lm(report).verdict == "derived" and _lm(report).kind != "merged"


MHA = DECODER | {"heads": 8, "kv_heads": 8}


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (3, "independent")])
def test_gqa_converted_model_is_derived_with_its_head_groups(tmp_path, seed, truth):
    parent = S.save(S.llama_decoder(1, **MHA), tmp_path / "mha", S.llama_config(**MHA))
    converted = S.fine_tune(structural.to_gqa(S.llama_decoder(seed, **MHA), 2, heads=8), 0.2, seed=10)
    report = compare(S.save(converted, tmp_path / "gqa", S.llama_config(**(MHA | {"kv_heads": 2}))), [parent])
    lm = _lm(report)
    assert lm.verdict == truth and not lm.not_comparable
    assert lm.coverage == pytest.approx(1.0)  # the converted keys and values are compared too
    if truth == "derived":
        assert lm.kind == "gqa-converted" and lm.p_value < 1e-6
        record = next(t for t in lm.tests if t.name == "kv heads pooled")
        assert (
            record.detail["groups"]
            == "key/value heads pooled (contiguous): kv 0 \u2190 0\u20133, kv 1 \u2190 4\u20137"
        )
        assert record.detail["layers"] == 8
        kv = [t for t in report.tensors if t.paired_by == "heads-pooled"]
        assert len(kv) == 16 and max(t.p_value for t in kv) < 1e-6  # each pooled pair is evidence itself


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (3, "inconclusive")])
def test_a_rotated_copy_with_a_new_vocabulary_is_found_by_its_unit_grams(parent, tmp_path, seed, truth):
    rotated = S.rotate_residual(S.fine_tune(S.llama_decoder(seed, **DECODER), 0.1, seed=5), seed=2)
    disguised = structural.new_vocabulary(
        rotated, ["model.embed_tokens.weight", "lm_head.weight"], 160, seed=9
    )
    lm = _lm(compare(S.save(disguised, tmp_path / "rot"), [parent]))
    assert lm.verdict == truth  # the control is not called independent: see the blind spot
    assert lm.blind_spots == [UNFITTED_ROTATION]
    gram = next(t for t in lm.tests if t.name == "unit-gram (basis-free)")
    if truth == "derived":
        assert lm.kind == "rotated" and lm.p_value < 1e-6 and gram.statistic > 0.9
    else:
        assert gram.p_value > 0.01 and lm.p_value > 0.01


@pytest.mark.parametrize(("seed", "truth"), [(1, "derived"), (3, "independent")])
def test_a_rotated_tied_model_whose_final_norm_went_into_its_head_is_judged(tmp_path, seed, truth):
    """A tied parent (SmolLM2): the rotation folds the final norm into an untied head, a second sign of
    the change of basis; once the rotation is fitted and undone, neither sign blocks a verdict."""
    tied = DECODER | {"tie_embeddings": True}
    parent = S.save(S.llama_decoder(1, **tied), tmp_path / "tied")
    rotated = S.rotate_residual(S.llama_decoder(seed, **tied), seed=2)
    lm = _lm(compare(S.save(rotated, tmp_path / "rot"), [parent]))
    assert lm.verdict == truth and not lm.blind_spots
    if truth == "derived":
        assert lm.kind == "rotated" and lm.p_value < 1e-6
