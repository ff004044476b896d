"""Policy files: presets ship as data, the schema is the contract, and every mistake is one line
naming the file and the key."""

import tomllib
from pathlib import Path

import jsonschema
import pytest
from audit_builders import write_policy

from scratchcheck.audit import PRESETS, RuleType, Severity, load_policy
from scratchcheck.audit.policy import PRESETS_DIR, load_schema
from scratchcheck.errors import PolicyError


def validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def rule_validator() -> jsonschema.Draft202012Validator:
    """A complete rule, as it stands after inheritance."""
    return jsonschema.Draft202012Validator({"$ref": "#/$defs/rule", "$defs": load_schema()["$defs"]})


def test_the_presets_ship_with_the_package_and_follow_the_schema():
    assert set(PRESETS) == {"strict", "declared-borrowing"}
    check = validator()
    rule = rule_validator()
    for name in PRESETS:
        raw = tomllib.loads((PRESETS_DIR / f"{name}.toml").read_text())
        check.validate(raw)
        for entry in raw["rule"]:
            rule.validate(entry)


def test_strict_requires_every_component_original_and_declared_borrowing_only_the_language_model():
    strict = load_policy("strict")
    (original,) = [r for r in strict.rules if r.type == RuleType.ORIGINAL]
    assert original.components == ("*",) and not original.allow_declared
    borrowing = load_policy("declared-borrowing")
    lm, others = [r for r in borrowing.rules if r.type == RuleType.ORIGINAL]
    assert "language_model" in lm.components and not lm.allow_declared
    assert others.allow_declared and "language_model" in others.exclude and "Apache-2.0" in others.licences
    for policy in (strict, borrowing):
        deciding = {r.type for r in policy.rules if r.severity == Severity.FAIL}
        assert {RuleType.METADATA_LEAK, RuleType.COVERAGE} <= deciding


def test_a_file_extends_a_preset_overriding_keys_adding_rules_and_allows(tmp_path):
    path = write_policy(
        tmp_path,
        """
extends = "declared-borrowing"
name = "ours"

[[rule]]
id = "own-tokenizer"
severity = "fail"

[[rule]]
id = "own-code-and-licence"
severity = "off"

[[rule]]
id = "mostly-original"
type = "original_share"
min = 0.9

[[allow]]
component = "vision"
from = "Qwen2.5-VL*"
license = "Apache-2.0"
""",
    )
    policy = load_policy(path)
    assert policy.name == "ours" and policy.extends == ("declared-borrowing",)
    rules = {r.id: r for r in policy.rules}
    assert rules["own-tokenizer"].severity == Severity.FAIL and rules["own-tokenizer"].max_jaccard == 0.9
    assert "own-code-and-licence" not in rules
    assert rules["mostly-original"].min == 0.9 and list(rules)[-1] == "mostly-original"
    (allow,) = policy.allows
    assert (allow.component, allow.source, allow.licence, allow.declared_in) == (
        "vision",
        "Qwen2.5-VL*",
        "Apache-2.0",
        None,
    )


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("rules = []", "rules", "unknown key"),
        (
            "[[rule]]\nid = 'x'\ntype = 'coverage'\nmin_coverage = 1.5\nmax_detectable_r = 0.5",
            "rule[0].min_coverage",
            "at most 1",
        ),
        (
            "[[rule]]\nid = 'x'\ntype = 'coverage'\nmin_coverage = 'half'\nmax_detectable_r = 0.5",
            "rule[0].min_coverage",
            "must be a number",
        ),
        ("[[rule]]\nid = 'x'\ntype = 'originality'", "rule[0].type", "must be one of"),
        ("[[rule]]\nid = 'x'\ntype = 'original'\nmin = 0.5", "rule[0].min", "unknown key"),
        ("[[rule]]\nid = 'x'\ntype = 'original_share'", "rule[0]", "missing required key 'min'"),
        ("[[rule]]\nid = 'x'\nseverity = 'warn'", "rule[0]", "missing required key 'type'"),
        ("[[rule]]\nid = 'x'\ntype = 'tokenizer'\nseverity = 'maybe'", "rule[0].severity", "must be one of"),
        ("[[allow]]\ncomponent = 'vision'", "allow[0]", "missing required key 'from'"),
        (
            "[[allow]]\ncomponent = 'vision'\nfrom = 'X'\ndeclared_in = '../x.md'",
            "allow[0].declared_in",
            "inside the suspect's folder",
        ),
        (
            "[[allow]]\ncomponent = 'vision'\nfrom = 'X'\ndeclared_in = '/etc/x.md'",
            "allow[0].declared_in",
            "inside the suspect's folder",
        ),
    ],
)
def test_a_malformed_policy_is_a_one_line_error_naming_the_file_and_key(tmp_path, text, key, problem):
    path = write_policy(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: {key}: ") and problem in message
    # The schema file says the same: jsonschema rejects the file, or one of its (complete) rules.
    raw = tomllib.loads(text)
    rule = rule_validator()
    assert not validator().is_valid(raw) or any(not rule.is_valid(e) for e in raw.get("rule", []))


def test_overrides_cannot_change_a_rules_type_and_extends_must_exist(tmp_path):
    changed = write_policy(tmp_path, "extends = 'strict'\n[[rule]]\nid = 'own-tokenizer'\ntype = 'coverage'")
    with pytest.raises(PolicyError, match=r"rule\[0\]\.type: cannot change the type"):
        load_policy(changed)
    unknown = write_policy(tmp_path, "extends = 'lenient'", "unknown.toml")
    with pytest.raises(PolicyError, match="extends: 'lenient' is neither a preset"):
        load_policy(unknown)
    loop = write_policy(tmp_path, "extends = 'loop.toml'", "loop.toml")
    with pytest.raises(PolicyError, match="extends itself"):
        load_policy(loop)


def test_bad_toml_and_missing_files_name_the_file(tmp_path):
    broken = write_policy(tmp_path, "name = ")
    with pytest.raises(PolicyError, match=r"policy\.toml: not valid TOML"):
        load_policy(broken)
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(tmp_path / "absent.toml")
    with pytest.raises(PolicyError, match="no such preset or policy file"):
        load_policy("lenient")


def test_every_policy_key_rule_type_and_preset_rule_is_explained_in_the_docs():
    """docs/audit.md is the evaluator's page: a key added to policy.schema.json must be explained there."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text()
    schema = load_schema()
    for key in (
        *schema["properties"],
        *schema["$defs"]["rule_entry"]["properties"],
        *schema["$defs"]["allow"]["properties"],
    ):
        assert any(form in docs for form in (f"`{key}`", f"{key} =", f"[[{key}]]")), key
    for rule_type in RuleType:
        assert f"`{rule_type}`" in docs, rule_type
    for name in PRESETS:
        for rule in load_policy(name).rules:
            assert f"`{rule.id}`" in docs, rule.id
