"""Compare with fingerprints on either side: the same verdicts and kinds, and the power it costs said."""

import json
from importlib import resources

import numpy as np
import pytest
from fp_models import PLAN, decoder

from scratchcheck import compare, synthetic
from scratchcheck.fingerprint import fingerprint


@pytest.fixture(scope="module")
def fps(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("fps")
    out = {}
    for name, folder in models.items():
        out[name] = root / f"{name}.scfp"
        fingerprint(folder, out[name], plan=PLAN)
    return out


def _verdicts(report):
    return {c.suspect_component: (c.verdict, c.kind) for c in report.components}


def test_a_fine_tune_is_derived_from_fingerprints_on_both_sides_and_on_one(models, fps):
    both = compare(fps["tuned"], [fps["base"]])
    one = compare(models["tuned"], [fps["base"]])
    assert _verdicts(both) == _verdicts(one)
    assert {v for v, _ in _verdicts(both).values()} == {"derived"}
    assert all(c.p_value < 1e-6 for c in both.components)
    assert both.sampled["sides"][str(fps["base"])] == "fingerprint"
    assert one.sampled["sides"][str(models["tuned"])] == "model, sampled in memory"
    assert "detectable |r| >=" in both.sampled["summary"]
    # Coverage is counted in the model's parameters, not the kept elements.
    assert all(c.coverage == pytest.approx(1.0) for c in both.components)


def test_an_independent_model_stays_independent_on_fingerprints(fps):
    report = compare(fps["other"], [fps["base"]])
    assert {c.verdict for c in report.components} == {"independent"}


def test_the_report_of_a_fingerprint_compare_validates_against_the_schema(fps):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(resources.files("scratchcheck.report").joinpath("compare.schema.json").read_text())
    report = compare(fps["tuned"], [fps["base"]]).to_dict()
    jsonschema.validate(report, schema)
    assert report["sampled"]["tensors_sampled"] > 0


def test_fingerprints_of_different_plans_do_not_compare(models, fps, tmp_path):
    from dataclasses import replace

    from scratchcheck.errors import UsageError

    other = tmp_path / "k.scfp"
    fingerprint(models["other"], other, plan=replace(PLAN, key=99))
    with pytest.raises(UsageError, match="different sampling plans"):
        compare(other, [fps["base"]])


@pytest.mark.slow
@pytest.mark.parametrize("suspect", ["tuned", "other"])
def test_verdicts_equal_the_full_compare(models, fps, suspect):
    full = compare(models[suspect], [models["base"]])
    assert _verdicts(compare(fps[suspect], [fps["base"]])) == _verdicts(full)
    assert _verdicts(compare(models[suspect], [fps["base"]])) == _verdicts(full)


def _sinusoidal_table(positions: int, dim: int) -> np.ndarray:
    increment = np.log(10000) / (dim // 2 - 1)
    scaled = np.arange(positions)[:, None] * np.exp(-increment * np.arange(dim // 2))[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def test_a_large_position_table_is_kept_whole_and_stays_no_evidence(tmp_path):
    # Two unrelated models with the same fixed table, large enough to be sampled if it were learned.
    table = {"model.embed_positions.weight": _sinusoidal_table(2048, 64)}
    fps = []
    for seed in (1, 2):
        folder = synthetic.save({**decoder(seed), **table}, tmp_path / f"m{seed}")
        fps.append(tmp_path / f"m{seed}.scfp")
        fp = fingerprint(folder, fps[-1], plan=PLAN)
        record = fp.tensor("model.embed_positions.weight")
        assert record["stored"] == "whole" and record["nonlearned_reason"].startswith("sinusoidal")
    report = compare(fps[0], [fps[1]])
    assert report.verdict == "independent"
    assert any(name == "model.embed_positions.weight" for name, _ in report.coverage[0].excluded)
