"""Pairing by content: a copy with every name scrambled and Gaussian noise of 1/700 of each tensor's
scale (the Llama3-V case) still finds its source; an independent model finds nothing."""

import numpy as np

from scratchcheck import synthetic as S
from scratchcheck.align import align

DECODER = {"layers": 4, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 128}


def _scrambled(weights, seed):
    order = np.random.default_rng(seed).permutation(len(weights))
    names = list(weights)
    return {f"t{order[k]:04d}": weights[name] for k, name in enumerate(names)}, {
        f"t{order[k]:04d}": name for k, name in enumerate(names)
    }


def test_a_scrambled_noised_copy_pairs_with_its_source_by_content(save, opened):
    source = S.llama_decoder(1, **DECODER)
    copy, truth = _scrambled(S.noised(source, 1 / 700, seed=4), seed=7)
    result = align(opened(save("copy", copy)), opened(save("source", source)))
    right = [p for p in result.pairs if truth[p.suspect.name] == p.reference.name]
    assert all(p.paired_by == "content" for p in result.pairs)
    assert len(right) >= 0.95 * len(source)
    assert len(right) == len(result.pairs)  # nothing paired wrongly
    # The pairs carry the reference's canonical roles and layers.
    q = next(p for p in right if truth[p.suspect.name] == "model.layers.2.self_attn.q_proj.weight")
    assert (q.role, q.reference_layer) == ("attn.q.weight", 2)


def test_an_independent_scrambled_model_pairs_with_nothing(save, opened):
    other, _ = _scrambled(S.llama_decoder(2, **DECODER), seed=7)
    result = align(opened(save("other", other)), opened(save("source", S.llama_decoder(1, **DECODER))))
    assert result.pairs == []


def test_anonymous_transposed_matrices_pair_by_content_both_ways(save, opened):
    """ONNX stores MatMul weights [in, out] under names like ``onnx::MatMul_470``."""
    source = S.llama_decoder(1, **DECODER)
    anonymous = {
        (f"onnx::MatMul_{k}" if w.ndim == 2 and ".layers." in n else n): (
            w.T.copy() if w.ndim == 2 and ".layers." in n else w
        )
        for k, (n, w) in enumerate(source.items())
    }
    truth = {f"onnx::MatMul_{k}": n for k, n in enumerate(source)}
    a, b = opened(save("anonymous", anonymous)), opened(save("source", source))
    for suspect, reference in ((a, b), (b, a)):
        result = align(suspect, reference)
        assert not result.unpaired_suspect and not result.unpaired_reference
        for pair in result.pairs:
            names = (pair.suspect.name, pair.reference.name)
            assert any(truth.get(x) == y for x, y in (names, names[::-1])) or names[0] == names[1]
            np.testing.assert_array_equal(pair.suspect.load(), pair.reference.load())
        assert {p.transform for p in result.pairs if p.paired_by == "content"} == {"suspect transposed"}
