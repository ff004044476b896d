"""The unit-Gram (Mantel) test: unchanged by a residual rotation, calibrated between unrelated models."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kstest

from scratchcheck import structural
from scratchcheck import synthetic as S
from scratchcheck.align import align
from scratchcheck.arch import layout
from scratchcheck.evidence.disguises import undo
from scratchcheck.evidence.invariants import unit_grams
from scratchcheck.evidence.thresholds import ALPHA_SOME
from scratchcheck.io import open_model

BENCH = Path(__file__).resolve().parents[2] / "bench" / "basis_free.py"
D = {"layers": 4, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 128}


def new_vocabulary(weights):
    """The embeddings and head of another tokenizer: no token shared, so no rotation can be fitted."""
    return structural.new_vocabulary(weights, ["model.embed_tokens.weight", "lm_head.weight"], 160, seed=9)


def _grams(tmp_path, suspect_weights):
    s_path = S.save(suspect_weights, tmp_path / "s")
    r_path = S.save(S.llama_decoder(1, **D), tmp_path / "r")
    with open_model(s_path) as s, open_model(r_path) as r:
        a, b = layout(s), layout(r)
        alignment, disguise = undo(a, b, align(a, b))
        assert disguise is not None and not disguise.rotation  # gains folded, rotation not fitted
        return unit_grams([p for p in alignment.pairs if p.learned])


def test_a_rotated_copy_keeps_its_unit_gram_matrices(tmp_path):
    rotated = S.rotate_residual(S.fine_tune(S.llama_decoder(1, **D), 0.1, seed=5), seed=2)
    grams = _grams(tmp_path, new_vocabulary(rotated))
    assert [g.layer for g in grams] == [0, 1, 2, 3]
    assert all(g.correlation > 0.9 and g.evidence.log_p < np.log(1e-6) for g in grams)


def test_unrelated_models_give_uniform_layer_p_values(tmp_path):
    ps = []
    for seed in range(2, 17):
        grams = _grams(
            tmp_path / str(seed), new_vocabulary(S.rotate_residual(S.llama_decoder(seed, **D), seed=seed))
        )
        ps += [float(np.exp(g.evidence.log_p)) for g in grams]
    assert len(ps) == 60
    assert kstest(ps, "uniform").pvalue > 0.01 and sum(p < 0.05 for p in ps) <= 6  # 3 expected


@pytest.mark.slow
def test_independently_trained_models_give_uniform_p_values_and_never_reach_a_verdict(tmp_path, monkeypatch):
    """The calibration bench (``bench/basis_free.py``) at small size: decoders trained from different
    seeds on one corpus and one vocabulary share everything but their run; one of each pair is folded,
    rotated and given another vocabulary, as the rotated controls are."""
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("basis_free", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "basis_free", bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench.lineage, "THREADS", 1)
    rows = bench.trained_pairs(bench.trained(5, 60, log=lambda *_: None), tmp_path)
    assert len(rows) == 10 and all(r.p > ALPHA_SOME for r in rows), [(r.case, r.p) for r in rows]
    layer_p = [p for r in rows for p in r.layer_p]
    assert len(layer_p) == 40 and kstest(layer_p, "uniform").pvalue > 0.01
