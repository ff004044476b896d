"""Unit features in fingerprints: a permuted copy is found from fingerprints, an independent model is
not, an old fingerprint without them still compares, and the size stays within its bounds."""

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from fp_models import PLAN, decoder

from exporters import export_gguf, quantise_int8_rows
from scratchcheck import compare, open_model, synthetic
from scratchcheck.errors import FormatError
from scratchcheck.fingerprint import fingerprint, read, verify, write
from scratchcheck.fingerprint.format import HEADER_KEY, UNITS_PREFIX
from scratchcheck.fingerprint.unitfeatures import FEATURE_ROWS
from scratchcheck.io.writer import write_safetensors

HEADS, KV_HEADS = 8, 2
CONFIG = synthetic.llama_config(
    layers=4, hidden=256, heads=HEADS, kv_heads=KV_HEADS, intermediate=512, vocab=1024
)


def _disguised(weights: synthetic.Weights) -> synthetic.Weights:
    """Lightly fine-tuned, every MLP unit and head moved, norm gains retrained from scratch: in the
    language model only the units, matched, carry the evidence."""
    moved = synthetic.permute_units(
        synthetic.fine_tune(weights, 0.05, seed=4), seed=5, heads=HEADS, kv_heads=KV_HEADS, derange=True
    )
    fresh = decoder(9)
    return {n: fresh[n] if n.endswith("norm.weight") else w for n, w in moved.items()}


@pytest.fixture(scope="module")
def permuted(tmp_path_factory):
    """Folders and fingerprints: ``base``, ``child`` (disguised from base), ``stranger`` (disguised
    from an independent model)."""
    root = tmp_path_factory.mktemp("permuted")
    weights = {"base": decoder(1), "child": _disguised(decoder(1)), "stranger": _disguised(decoder(2))}
    out = {}
    for name, w in weights.items():
        out[name] = synthetic.save(w, root / name, CONFIG)
        out[f"{name}.scfp"] = root / f"{name}.scfp"
        fingerprint(out[name], out[f"{name}.scfp"], plan=PLAN)
    return out


def _language_model(report):
    [component] = [c for c in report.components if c.suspect_component == "language_model"]
    return component


def _log10_p(component, name: str) -> float:
    [test] = [t for t in component.tests if t.name == name]
    return test.detail["log10_p"]


def test_the_full_compare_finds_the_disguised_child_permuted(permuted):
    full = _language_model(compare(permuted["child"], [permuted["base"]]))
    assert (full.verdict, full.kind) == ("derived", "permuted")


@pytest.mark.parametrize("suspect", ["child.scfp", "child"])
def test_a_permuted_child_is_derived_permuted_from_fingerprints(permuted, suspect):
    report = compare(permuted[suspect], [permuted["base.scfp"]])
    lm = _language_model(report)
    assert (lm.verdict, lm.kind) == ("derived", "permuted")
    assert lm.p_value < 1e-6
    # Each group on its own re-pairs the moved units: every unit and every head was matched.
    assert _log10_p(lm, "unit-matching-similarity (mlp units)") < -6
    assert _log10_p(lm, "unit-matching-similarity (attention heads)") < -6
    [heads] = [t for t in lm.tests if t.name == "unit-matching-similarity (attention heads)"]
    assert {layer["matched"] for layer in heads.detail["layers"]} == {f"{HEADS} of {HEADS}"}


@pytest.mark.parametrize("suspect", ["stranger.scfp", "stranger"])
def test_the_same_disguise_of_an_independent_model_stays_independent(permuted, suspect):
    report = compare(permuted[suspect], [permuted["base.scfp"]])
    assert {c.verdict for c in report.components} == {"independent"}
    lm = _language_model(report)
    assert _log10_p(lm, "unit-matching-similarity (mlp units)") > -2
    assert _log10_p(lm, "unit-matching-similarity (attention heads)") > -2


def _without_features(source: Path, target: Path) -> Path:
    """The fingerprint as written before unit features existed."""
    fp = read(source)
    header = {
        **fp.header,
        "tensors": [{k: v for k, v in t.items() if k != "unit_features"} for t in fp.header["tensors"]],
    }
    write(replace(fp, header=header, units={}), target)
    return target


def test_an_old_fingerprint_without_features_compares_and_states_the_lost_power(permuted, tmp_path):
    old = _without_features(permuted["base.scfp"], tmp_path / "old.scfp")
    assert not read(old).units
    schema = json.loads(resources.files("scratchcheck.report").joinpath("compare.schema.json").read_text())
    for suspect in (permuted["child.scfp"], permuted["child"]):
        report = compare(suspect, [old])
        jsonschema.validate(report.to_dict(), schema)
        lm = _language_model(report)
        [lost] = [t for t in lm.tests if t.name == "unit-matching (no unit features)"]
        assert lost.p_value is None and "permuted" in lost.null
        assert lm.verdict != "derived"  # only the units carried the evidence, and they were not re-paired


def test_features_are_every_column_of_the_first_kept_rows_of_down_and_o(permuted):
    fp = read(permuted["base.scfp"])
    weights = decoder(1)
    assert set(fp.units) == {
        f"model.layers.{i}.{m}" for i in range(4) for m in ("mlp.down_proj.weight", "self_attn.o_proj.weight")
    }
    for name, values in fp.units.items():
        record = fp.tensor(name)["unit_features"]
        assert record["block"] == (1 if "mlp" in name else 256 // HEADS)
        np.testing.assert_array_equal(values, weights[name][record["rows"]])
        assert record["rows"] == sorted(record["rows"]) and len(record["rows"]) <= FEATURE_ROWS


def test_a_fingerprint_whose_features_do_not_match_the_header_is_refused(permuted, tmp_path):
    fp = read(permuted["base.scfp"])
    name = next(iter(fp.units))
    tensors = {n: np.asarray(v) for n, v in fp.arrays.items()}
    tensors.update((UNITS_PREFIX + n, np.asarray(v)) for n, v in fp.units.items())
    tensors[UNITS_PREFIX + name] = tensors[UNITS_PREFIX + name][:-1]
    bad = tmp_path / "bad.scfp"
    write_safetensors(bad, tensors, metadata={HEADER_KEY: json.dumps(fp.header)})
    with pytest.raises(FormatError, match="unit features"):
        read(bad)


def _int8_down_projections(weights: synthetic.Weights) -> synthetic.Weights:
    out = dict(weights)
    for name in [n for n in weights if n.endswith("down_proj.weight")]:
        out[name], out[name + "_scale"] = quantise_int8_rows(weights[name])
    return out


@pytest.mark.parametrize("kind", ["gguf", "int8"])
def test_features_of_a_quantised_model_are_its_dequantised_rows(permuted, tmp_path, kind):
    if kind == "gguf":
        path = tmp_path / "model.gguf"
        with open_model(permuted["base"]) as checkpoint:
            export_gguf(checkpoint, path, quant="Q8_0", arch="llama", names="hf")
    else:
        path = synthetic.save(_int8_down_projections(decoder(1)), tmp_path / "int8", CONFIG)
    fp = fingerprint(path, tmp_path / f"{kind}.scfp", plan=PLAN)
    downs = [n for n in fp.units if "down" in n]
    assert len(downs) == 4
    with open_model(path) as checkpoint:
        for name in downs:
            rows = fp.tensor(name)["unit_features"]["rows"]
            np.testing.assert_array_equal(fp.units[name], np.asarray(checkpoint.read_values(name))[rows])
    assert verify(path, tmp_path / f"{kind}.scfp").ok
