"""The i x j layer matrix and the layer map read from it: identity, offset, every k-th layer, repeated
or reordered layers, none."""

import numpy as np
import pytest

from scratchcheck import structural
from scratchcheck import synthetic as S
from scratchcheck.align import align
from scratchcheck.align.layermap import describe, infer

DECODER = {"layers": 8, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 128}


def _matrix(s_layers, r_layers, mapping, rng):
    values = 0.03 * rng.standard_normal((len(s_layers), len(r_layers)))
    for i, j in mapping:
        values[s_layers.index(i), r_layers.index(j)] = 0.9
    return values


@pytest.mark.parametrize(
    ("n_s", "n_r", "mapping", "kind"),
    [
        (6, 6, [(i, i) for i in range(6)], "identity"),
        (6, 8, [(i, i + 2) for i in range(6)], "offset"),
        (4, 8, [(i, 2 * i) for i in range(4)], "stride"),
        (8, 4, [(2 * j, j) for j in range(4)], "stride"),
        (6, 6, [], "none"),
        (6, 6, [(0, 3), (1, 0), (2, 5), (3, 1), (4, 4), (5, 2)], "reordered"),
        (12, 8, [(i, i) for i in range(6)] + [(i, i - 4) for i in range(6, 12)], "repeated"),
        (6, 8, [(0, 0), (1, 1), (2, 4), (3, 5), (4, 6), (5, 7)], "reordered"),
    ],
)
def test_the_map_is_read_from_the_matrix(n_s, n_r, mapping, kind):
    s_layers, r_layers = list(range(n_s)), list(range(n_r))
    values = _matrix(s_layers, r_layers, mapping, np.random.default_rng(0))
    found = infer(values, s_layers, r_layers, noise=1 / 32)
    assert found.kind == kind
    if kind != "none":
        assert found.mapping == mapping


def test_a_derivative_that_keeps_every_second_layer_is_found_and_paired_through_the_map(save, opened):
    parent = S.llama_decoder(1, **DECODER)
    child = S.fine_tune(S.drop_layers(parent, keep_every=2), 0.1, seed=2)
    a, b = opened(save("child", child)), opened(save("parent", parent))
    result = align(a, b)
    matrices = [m for m in result.layer_matrices if m.component == "language_model"]
    assert {m.role for m in matrices} >= {"attn.q.weight", "mlp.up.weight", "norm.attn.weight"}
    up = next(m for m in matrices if m.role == "mlp.up.weight")
    assert (up.layer_map, up.mapping) == ("stride", [[0, 0], [1, 2], [2, 4], [3, 6]])
    assert np.array(up.values).shape == (4, 8) and up.p_value is None
    block = [p for p in result.pairs if p.layer is not None]
    assert block and all(p.reference_layer == 2 * p.layer for p in block)
    assert "model.layers.1.mlp.up_proj.weight" in result.unpaired_reference
    # The other way round: the parent's even layers meet the child's layers.
    back = align(b, a)
    up = next(m for m in back.layer_matrices if m.role == "mlp.up.weight")
    assert (up.layer_map, up.mapping) == ("stride", [[0, 0], [2, 1], [4, 2], [6, 3]])
    assert all(p.layer == 2 * p.reference_layer for p in back.pairs if p.layer is not None)


def test_independent_models_show_no_map_and_pair_layer_by_layer(save, opened):
    result = align(
        opened(save("a", S.llama_decoder(1, **DECODER))), opened(save("b", S.llama_decoder(2, **DECODER)))
    )
    assert {m.layer_map for m in result.layer_matrices} == {"none"}
    assert all(p.reference_layer == p.layer for p in result.pairs)
    assert not result.unpaired_suspect and not result.unpaired_reference


def test_an_upscaled_derivative_pairs_every_layer_with_its_source(save, opened):
    parent = S.llama_decoder(1, **DECODER)
    sources = list(range(6)) + list(range(2, 8))  # SOLAR-style: 8 layers -> 12
    child = S.fine_tune(structural.stack_layers(parent, sources), 0.1, seed=2)
    result = align(opened(save("child", child)), opened(save("parent", parent)))
    up = next(m for m in result.layer_matrices if m.role == "mlp.up.weight")
    assert up.layer_map == "repeated"
    assert describe(up.mapping) == "suspect 0\u20135 \u2190 reference 0\u20135, 6\u201311 \u2190 2\u20137"
    block = [p for p in result.pairs if p.layer is not None]
    assert {p.layer for p in block} == set(range(12))
    assert all(p.reference_layer == sources[p.layer] for p in block)
    assert not [n for n in result.unpaired_suspect if ".layers." in n]
