"""verdict: rules, kinds, power and multiple-testing control, checked through ``compare``."""

import json
import math

import ml_dtypes
import numpy as np
import pytest
from scipy import stats as sps

from scratchcheck import compare, synthetic

SMALL = dict(layers=4, hidden=32, heads=4, kv_heads=2, intermediate=64, vocab=64)


def _save(w, path):
    return synthetic.save(w, path, synthetic.llama_config(**SMALL))


def _lm(report, reference=None):
    return next(
        c
        for c in report.components
        if c.component_kind == "language_model" and (reference is None or c.reference == str(reference))
    )


def _combined(comp):
    return next(t for t in comp.tests if t.name == "combined")


def test_independent_models_give_uniform_p_and_are_never_derived(tmp_path):
    ps = []
    for seed in range(30):
        a = _save(synthetic.llama_decoder(300 + seed, **SMALL), tmp_path / f"a{seed}")
        b = _save(synthetic.llama_decoder(400 + seed, **SMALL), tmp_path / f"b{seed}")
        report = compare(a, [b])
        assert report.verdict in ("independent", "inconclusive")
        ps.append(10 ** _combined(_lm(report)).detail["log10_p_unadjusted"])
    assert sps.kstest(ps, "uniform").pvalue > 0.01


def test_the_power_statement_is_what_the_test_detects(tmp_path):
    ref_w = synthetic.llama_decoder(1, **SMALL)
    ref = _save(ref_w, tmp_path / "ref")
    other = synthetic.llama_decoder(2, **SMALL)
    power = _lm(compare(_save(other, tmp_path / "other"), [ref])).power
    assert 0 < power < 0.5

    def mix(rho):
        # Every tensor correlates rho with the reference (gains around their own mean).
        out = {}
        for name, w in ref_w.items():
            mean = float(w.mean())
            out[name] = (
                mean + rho * (w - mean) + math.sqrt(1 - rho**2) * (other[name] - other[name].mean())
            ).astype(np.float32)
        return out

    assert _lm(compare(_save(mix(2 * power), tmp_path / "strong"), [ref])).verdict == "derived"
    assert _lm(compare(_save(mix(0.25 * power), tmp_path / "weak"), [ref])).verdict != "derived"


def test_holm_spans_components_and_references(tmp_path):
    base = synthetic.llama_decoder(1, **SMALL)
    refs = [_save(base, tmp_path / "r1"), _save(synthetic.llama_decoder(2, **SMALL), tmp_path / "r2")]
    report = compare(_save(synthetic.fine_tune(base, 0.3, seed=1), tmp_path / "s"), refs)
    lm = _lm(report)
    assert lm.reference == str(refs[0]) and lm.verdict == "derived" and lm.runner_up == str(refs[1])
    for comp in report.components:
        detail = _combined(comp).detail
        assert detail["log10_p"] >= detail["log10_p_unadjusted"]
        assert "Holm-adjusted across 6" in _combined(comp).null  # 3 components x 2 references


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    base = synthetic.llama_decoder(3, **SMALL)
    return base, _save(base, root / "base"), root


@pytest.mark.parametrize(
    ("name", "make", "verdict", "kind"),
    [
        ("noised", lambda w: synthetic.noised(w, 1 / 700, seed=11), "derived", "noised"),
        (
            "bf16",
            lambda w: {k: v.astype(ml_dtypes.bfloat16).astype(np.float32) for k, v in w.items()},
            "identical",
            "converted",
        ),
        ("4bit", lambda w: _absmax(w, 4, 32), "derived", "quantised"),
        ("int8 blocks", lambda w: _absmax(w, 8, 32), "identical", "converted"),
        # Every weight moved by a few +-lr steps: as small and flat-topped as rounding, but on no grid.
        ("adam steps", lambda w: _sign_steps(w, 5, 2e-4, seed=6), "derived", "fine-tuned"),
        ("permuted", lambda w: synthetic.permute_units(w, 5, heads=4, kv_heads=2), "derived", "permuted"),
        ("dropped", lambda w: synthetic.drop_layers(w, 2), "derived", "layer-dropped"),
        ("fine-tuned", lambda w: synthetic.fine_tune(w, 0.8, seed=4), "derived", None),
    ],
)
def test_kinds(family, name, make, verdict, kind):
    base, ref, root = family
    lm = _lm(compare(_save(make(base), root / name), [ref]))
    assert lm.verdict == verdict and lm.p_value < 1e-6
    if kind:
        assert lm.kind == kind


def test_a_bf16_model_and_its_light_fine_tune_saved_in_bf16_are_not_identical(tmp_path):
    """Both sides on the bf16 grid is no trace of a conversion: rounding a bf16 value to bf16 leaves
    it as it is. The upcast of the same model is identical."""
    bf16 = {k: v.astype(ml_dtypes.bfloat16) for k, v in synthetic.llama_decoder(5, **SMALL).items()}
    ref = _save(bf16, tmp_path / "ref")
    upcast = {k: v.astype(np.float32) for k, v in bf16.items()}
    tuned = {k: v.astype(ml_dtypes.bfloat16) for k, v in _sign_steps(upcast, 5, 2e-4, seed=8).items()}
    lm = _lm(compare(_save(tuned, tmp_path / "tuned"), [ref]))
    assert lm.verdict == "derived" and lm.kind == "fine-tuned"
    same = _lm(compare(_save(upcast, tmp_path / "upcast"), [ref]))
    assert same.verdict == "identical" and "Every difference is a change of precision" in same.explanation
    assert "equal in value" in same.explanation


def test_a_converted_copy_says_which_trace_made_each_difference_rounding(family):
    base, ref, root = family
    lm = _lm(compare(_save(_absmax(base, 8, 32), root / "int8 explained"), [ref]))
    assert lm.kind == "converted" and "rounded onto an integer grid" in lm.explanation


def test_a_light_fine_tune_of_a_dequantised_model_is_not_called_its_original(tmp_path):
    """The reference is an int8 round trip (on per-block grids); the suspect moved each weight by a
    few steps far smaller than the grid's. Rounding the suspect onto the grid gives the reference
    back, but rounding's errors would spread over half a step: this is a fine-tune, not the
    full-precision model the reference was quantised from."""
    base = _absmax(synthetic.llama_decoder(6, **SMALL), 8, 32)
    ref = _save(base, tmp_path / "ref")
    scale = float(np.std(base["model.layers.0.mlp.up_proj.weight"]))
    tuned = _sign_steps(base, 3, 2e-4 * scale, seed=9)
    lm = _lm(compare(_save(tuned, tmp_path / "tuned"), [ref]))
    assert lm.verdict == "derived" and lm.kind == "fine-tuned"


def _sign_steps(w, steps, lr, *, seed):
    rng = np.random.default_rng(seed)
    return {k: synthetic.adam_steps(v, steps, lr, rng) for k, v in w.items()}


def test_a_partial_edit_is_derived_however_small(family):
    base, ref, root = family
    edited = dict(base)
    name = "model.layers.1.self_attn.q_proj.weight"
    edited[name] = (base[name] * (1 + 1e-4)).astype(np.float32)  # one matrix touched, like a tiny LoRA
    lm = _lm(compare(_save(edited, root / "lora"), [ref]))
    assert lm.verdict == "derived"


def test_screening_statistics_are_never_evidence(family):
    base, ref, root = family
    report = compare(_save(synthetic.llama_decoder(9, **SMALL), root / "other"), [ref])
    screening = [t for c in report.components for t in c.tests if t.name.startswith("screening")]
    assert screening and all(t.p_value is None for t in screening)
    assert all("not evidence" in t.null for t in screening)


def test_non_learned_tensors_never_count(family, tmp_path):
    base, _, _ = family
    table = (1.0 / 10000 ** (np.arange(0, 8, 2) / 8)).astype(np.float32)  # RoPE inv_freq: same in every model
    a = {
        **synthetic.llama_decoder(20, **SMALL),
        **{f"model.layers.{i}.self_attn.rotary_emb.inv_freq": table for i in range(4)},
    }
    b = {
        **synthetic.llama_decoder(21, **SMALL),
        **{f"model.layers.{i}.self_attn.rotary_emb.inv_freq": table for i in range(4)},
    }
    report = compare(_save(a, tmp_path / "a"), [_save(b, tmp_path / "b")])
    assert report.verdict == "independent"
    assert not any(t.learned and "inv_freq" in t.suspect for t in report.tensors)


def test_json_contract(family):
    base, ref, root = family
    data = json.loads(
        json.dumps(compare(_save(synthetic.noised(base, 0.01, seed=2), root / "j"), [ref]).to_dict())
    )
    assert data["schema"] == "scratchcheck.compare/1.1"
    assert {"verdict", "suspect", "references", "components", "tensors", "warnings"} <= data.keys()
    for comp in data["components"]:
        assert {
            "suspect_component",
            "reference",
            "reference_component",
            "verdict",
            "kind",
            "p_value",
            "params",
            "share",
            "coverage",
            "pearson",
        } <= comp.keys()
    for t in data["tensors"]:
        assert {"suspect", "reference", "cosine", "pearson", "p_value", "learned"} <= t.keys()


def _absmax(w, bits, block):
    return {k: synthetic.round_trip(v, bits, block) if v.ndim >= 2 else v for k, v in w.items()}
