"""Every audit output: JSON against its shipped schema, terminal, Markdown and HTML say the same."""

import json
from dataclasses import fields

import jsonschema
from audit_builders import DECLARATION, declare
from rich.console import Console

from scratchcheck.audit import AuditResult, Evidence, RuleResult, audit, load_policy
from scratchcheck.report.audit_html import render_audit_html
from scratchcheck.report.audit_markdown import render_audit_markdown
from scratchcheck.report.audit_terminal import render_audit
from scratchcheck.report.json_report import load_schema, write_json


def validator() -> jsonschema.Draft202012Validator:
    schema = load_schema("audit")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_audit_json_validates_and_the_schema_names_every_field(hcx, solar, unrelated_shapes, tmp_path):
    declare(hcx.suspect, DECLARATION)
    check = validator()
    for case in (hcx, solar, unrelated_shapes):
        for preset in ("strict", "declared-borrowing"):
            data = json.loads(
                write_json(audit(case.report, load_policy(preset)), tmp_path / "a.json").read_text()
            )
            check.validate(data)
    schema = load_schema("audit")
    assert set(schema["properties"]) == {f.name for f in fields(AuditResult)}
    assert set(schema["$defs"]["rule"]["properties"]) == {f.name for f in fields(RuleResult)}
    assert set(schema["$defs"]["evidence"]["properties"]) == {f.name for f in fields(Evidence)}
    assert not check.is_valid({**data, "outcome": "MOSTLY"})
    assert not check.is_valid({**data, "schema": "scratchcheck.audit/2"})


def test_terminal_markdown_and_html_show_each_rule_its_outcome_and_evidence(hcx):
    declare(hcx.suspect, None)
    result = audit(hcx.report, load_policy("strict"))
    console = Console(record=True, width=200, color_system=None)
    render_audit(result, console)
    outputs = {
        "terminal": console.export_text(),
        "markdown": render_audit_markdown(result),
        "html": render_audit_html(result),
    }
    for name, text in outputs.items():
        assert "FAIL" in text and "UNDETERMINED" in text, name
        for rule in result.rules:
            assert rule.id in text, (name, rule.id)
        assert "vision_model_name_or_path" in text and "derived from qwen2.5-vl-mini" in text, name
        assert "explained: raw cosine" in text, name
    terminal = outputs["terminal"].splitlines()
    assert terminal[0] == "Audit: FAIL  under policy 'strict'"
    assert any(line.startswith("FAIL         every-component-original") for line in terminal)
    assert any("own-tokenizer" in line and "(warning only)" in line for line in terminal)
    assert "<script" not in outputs["html"] and "http" not in outputs["html"].split("<main>")[0]
