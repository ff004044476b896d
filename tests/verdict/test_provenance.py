"""Verdicts people can defend: provenance by layer, shares, spread, blind spots, fixed tables, gates."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from scratchcheck import compare, synthetic

SMALL = dict(layers=4, hidden=64, heads=4, kv_heads=2, intermediate=128, vocab=128)


def _save(w, path):
    return synthetic.save(w, path, synthetic.llama_config(**SMALL))


def _lm(report):
    return next(c for c in report.components if c.component_kind == "language_model")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("prov")
    w = synthetic.llama_decoder(7, **SMALL)
    return w, _save(w, root / "base"), root


def test_half_copied_stack_reports_layers_and_a_half_share(base):
    w, ref, root = base
    other = synthetic.llama_decoder(8, **SMALL)
    drifted = synthetic.fine_tune(w, 0.05, seed=1)
    half = {k: (drifted[k] if any(f"layers.{i}." in k for i in (0, 1)) else other[k]) for k in w}
    report = compare(_save(half, root / "half"), [ref])
    lm = _lm(report)
    assert lm.verdict == "derived"
    by_layer = {g.layers[0]: g.verdict for g in lm.provenance if g.layers}
    assert by_layer == {0: "derived", 1: "derived", 2: "independent", 3: "independent"}
    layer_params = sum(g.params for g in lm.provenance if g.layers)
    derived = sum(g.params for g in lm.provenance if g.verdict == "derived")
    assert derived == pytest.approx(layer_params / 2, rel=0.01)
    assert report.verdict == "derived" and report.headline.startswith("partially derived")
    assert 0.3 < report.share_by_verdict["derived"] < 0.5
    assert math.isclose(sum(report.share_by_verdict.values()), 1.0, abs_tol=1e-9)
    assert "layers 0-1 derived" in lm.explanation and "layers 2-3 independent" in lm.explanation


def test_a_fine_tune_where_every_tensor_agrees_is_derived_everywhere(base):
    w, ref, root = base
    report = compare(_save(synthetic.fine_tune(w, 0.2, seed=3), root / "ft"), [ref])
    lm = _lm(report)
    assert lm.verdict == "derived" and all(g.verdict == "derived" for g in lm.provenance)
    spread = next(t for t in lm.tests if t.name == "spread")
    assert spread.detail["passed"] and len(spread.detail["left_out"]) >= 3
    assert report.headline.startswith("derived:")


def test_one_reference_may_be_given_alone_as_a_path_or_a_string(base):
    w, ref, root = base
    suspect = _save(synthetic.fine_tune(w, 0.2, seed=3), root / "alone")
    listed = compare(suspect, [ref])
    for alone in (ref, str(ref)):
        report = compare(suspect, alone)
        assert [r.path for r in report.references] == [r.path for r in listed.references]
        assert _lm(report).verdict == _lm(listed).verdict == "derived"


def test_a_partly_identical_model_is_not_headlined_identical(base):
    w, ref, root = base
    pruned = dict(w)
    # A new vocabulary of 96 tokens: no row is the reference's, so the rows pair by position only
    # (issue 11) and say "independent"; the rest of the model is bit-identical.
    rng = np.random.default_rng(0)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        pruned[name] = (0.02 * rng.standard_normal((96, w[name].shape[1]))).astype(np.float32)
    report = compare(_save(pruned, root / "pruned"), [ref])
    assert report.verdict == "derived"  # some parts bit-identical, others independent
    assert report.share_by_verdict["independent"] > 0.05
    assert "identical" in report.headline and not report.headline.startswith("identical")


def test_a_vocabulary_pruned_copy_is_derived_not_headlined_identical(base):
    w, ref, root = base
    pruned = dict(w)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        pruned[name] = w[name][:96]  # every kept row verbatim, 32 rows cut
    report = compare(_save(pruned, root / "cut"), [ref])
    embeddings = next(c for c in report.components if c.component_kind == "embeddings")
    assert embeddings.verdict == "derived" and embeddings.kind == "vocab-pruned"
    assert all(g.verdict == "derived" for g in embeddings.provenance)
    assert report.verdict == "derived" and report.headline.startswith("derived:")
    assert report.share_by_verdict["identical"] < 0.99 and "identical" in report.headline


def test_evidence_resting_on_two_tensors_is_not_derived(tmp_path):
    a = synthetic.llama_decoder(11, **SMALL)
    b = synthetic.llama_decoder(12, **SMALL)
    for name in ("model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"):
        b[name] = a[name].copy()  # two of 36 matrices shared: alone they give p far below 1e-6
    report = compare(_save(a, tmp_path / "a"), [_save(b, tmp_path / "b")])
    lm = _lm(report)
    assert next(t for t in lm.tests if t.name == "combined").p_value < 1e-6
    assert lm.verdict == "inconclusive"
    assert any("rests on 2 tensor(s)" in reason for reason in lm.blind_spots)
    assert report.share_by_verdict["derived"] == 0.0


def test_a_rotated_copy_with_folded_gains_is_never_independent(base):
    w, ref, root = base
    report = compare(_save(synthetic.rotate_residual(w, seed=5), root / "rot"), [ref])
    assert report.verdict != "independent"
    lm = _lm(report)
    # The rotation is fitted through the shared-token embeddings and undone (issue 11): the copy is
    # found, and the folded gains are no blind spot any more.
    assert (lm.verdict, lm.kind) == ("derived", "rotated")
    assert not any("norm gains" in reason for reason in lm.blind_spots)


def test_a_control_with_ordinary_gains_stays_independent(base):
    _, ref, root = base
    report = compare(_save(synthetic.llama_decoder(9, **SMALL), root / "ctl"), [ref])
    assert report.verdict == "independent" and not _lm(report).blind_spots


def _dft(n_fft: int, window: bool) -> np.ndarray:
    t = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    w = 0.5 - 0.5 * np.cos(2 * np.pi * t / n_fft) if window else np.ones(n_fft)
    angle = 2 * np.pi * k * t / n_fft
    return np.concatenate([np.cos(angle) * w, -np.sin(angle) * w])[:, None, :].astype(np.float32)


def _audio(seed: int, basis: np.ndarray, hidden: int = 32) -> dict:
    """A small VAD-like model: fixed STFT conv front end, a conv encoder and an LSTM cell whose
    four gate blocks have their own means (the forget gate's bias high), as training leaves them."""
    rng = np.random.default_rng(seed)
    bins = basis.shape[0] // 2
    gate_means = np.repeat([0.0, 1.0, 0.0, -0.2], hidden)
    gate_scales = np.repeat([0.1, 0.3, 0.05, 0.2], hidden)
    return {
        "stft.forward_basis_buffer": basis,
        "encoder.0.weight": (rng.standard_normal((hidden, bins, 3)) / 8).astype(np.float32),
        "encoder.0.bias": (0.1 * rng.standard_normal(hidden)).astype(np.float32),
        "decoder.rnn.weight_ih": (gate_scales[:, None] * rng.standard_normal((4 * hidden, hidden))).astype(
            np.float32
        ),
        "decoder.rnn.weight_hh": (gate_scales[:, None] * rng.standard_normal((4 * hidden, hidden))).astype(
            np.float32
        ),
        "decoder.rnn.bias_ih": (gate_means + gate_scales * rng.standard_normal(4 * hidden)).astype(
            np.float32
        ),
        "decoder.rnn.bias_hh": (gate_means + gate_scales * rng.standard_normal(4 * hidden)).astype(
            np.float32
        ),
        "decoder.out.weight": (rng.standard_normal((1, hidden, 1)) / 6).astype(np.float32),
    }


@pytest.mark.parametrize("window", [True, False])
def test_a_model_whose_only_match_is_a_fixed_basis_is_independent(tmp_path, window):
    basis = _dft(64, window)
    a = synthetic.save(_audio(1, basis), tmp_path / "a")
    b = synthetic.save(_audio(2, basis), tmp_path / "b")
    report = compare(a, [b])
    assert report.verdict == "independent"
    excluded = {name: why for cov in report.coverage for name, why in cov.excluded}
    assert "fixed signal-processing basis" in excluded["stft.forward_basis_buffer"]


def test_recurrent_gate_blocks_keep_p_uniform_and_copies_derived(tmp_path):
    basis = _dft(32, True)
    ps = []
    for seed in range(30):
        a = synthetic.save(_audio(100 + seed, basis, hidden=16), tmp_path / f"a{seed}")
        b = synthetic.save(_audio(200 + seed, basis, hidden=16), tmp_path / f"b{seed}")
        report = compare(a, [b])
        assert report.verdict in ("independent", "inconclusive")
        combined = next(t for c in report.components for t in c.tests if t.name == "combined")
        ps.append(10 ** combined.detail["log10_p_unadjusted"])
        gates = [t for t in report.tensors if "gate block" in t.suspect]
        assert len(gates) == 4 * 8  # two weights and two biases, eight blocks each
    assert sps.kstest(ps, "uniform").pvalue > 0.01
    child = synthetic.save(synthetic.noised(_audio(100, basis, hidden=16), 0.01, seed=1), tmp_path / "child")
    assert compare(child, [tmp_path / "a0"]).verdict == "derived"
