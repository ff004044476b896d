"""The issue's acceptance cases: the disputes in miniature under the shipped policies."""

from dataclasses import replace
from pathlib import Path

import pytest
from audit_builders import DECLARATION, declare, write_policy

from scratchcheck.audit import Outcome, audit, load_policy
from scratchcheck.metadata import compare_metadata

DECLARED = """
extends = "declared-borrowing"

[[allow]]
component = "vision"
from = "Qwen2.5-VL*"
license = "{licence}"
{declared_in}
"""


def declared(tmp_path, licence="Apache-2.0", declared_in='declared_in = "README.md"'):
    return load_policy(write_policy(tmp_path, DECLARED.format(licence=licence, declared_in=declared_in)))


def rule(result, rule_type):
    (found,) = [r for r in result.rules if r.type == rule_type and r.severity == "fail" and r.evidence]
    return found


def evidence(result, subject):
    return [e for r in result.rules for e in r.evidence if e.subject == subject]


def test_hcx_fails_strict_on_the_derived_vision_tower_and_the_leaked_path(hcx):
    declare(hcx.suspect, DECLARATION)  # a declaration does not help under strict
    result = audit(hcx.report, load_policy("strict"))
    assert result.outcome == Outcome.FAIL and result.exit_code == 1
    original = rule(result, "original")
    assert original.outcome == Outcome.FAIL
    (vision,) = [e for e in original.evidence if e.subject == "vision"]
    assert vision.outcome == Outcome.FAIL and vision.verdict == "derived" and vision.p_value < 1e-12
    assert vision.share > 0.5 and vision.tensors and all("vision_model" in t for t in vision.tensors)
    assert {e.subject: e.outcome for e in original.evidence}["language_model"] == Outcome.PASS
    leak = rule(result, "metadata_leak")
    assert leak.outcome == Outcome.FAIL
    assert "config.json $.vision_model_name_or_path" in [
        e.subject for e in leak.evidence if e.outcome == "FAIL"
    ]
    assert "qwen2_5_vl_32b_visual" in " ".join(e.note for e in leak.evidence)


def test_hcx_passes_declared_borrowing_when_the_borrowing_is_declared_with_its_licence(hcx, tmp_path):
    declare(hcx.suspect, DECLARATION)
    result = audit(hcx.report, declared(tmp_path))
    assert result.outcome == Outcome.PASS and result.exit_code == 0, result.summary
    (vision,) = evidence(result, "vision")
    assert vision.outcome == Outcome.PASS and vision.verdict == "derived"  # borrowed, and declared
    assert "declared in README.md" in vision.note and "confirm Apache-2.0" in vision.note
    leaks = rule(result, "metadata_leak").evidence
    assert leaks and all(e.outcome == Outcome.PASS and "disclosed" in e.note for e in leaks)


def test_hcx_fails_declared_borrowing_when_the_declaration_is_missing(hcx, tmp_path):
    declare(hcx.suspect, None)
    result = audit(hcx.report, declared(tmp_path))
    assert result.outcome == Outcome.FAIL
    (vision,) = evidence(result, "vision")
    assert vision.outcome == Outcome.FAIL and "README.md is not in the suspect's folder" in vision.note
    assert rule(result, "metadata_leak").outcome == Outcome.FAIL
    # The preset alone declares nothing.
    declare(hcx.suspect, DECLARATION)
    assert audit(hcx.report, load_policy("declared-borrowing")).outcome == Outcome.FAIL


@pytest.mark.parametrize(
    ("readme", "licence", "fragment"),
    [
        ("The vision encoder is our own.", "Apache-2.0", "does not name 'Qwen2.5-VL*'"),
        ("Vision from Qwen2.5-VL-32B.", "Apache-2.0", "not its licence Apache-2.0"),
        ("Vision from Qwen2.5-VL-32B (MIT).", "MIT", "reference's own files carry Apache-2.0, not MIT"),
        ("Vision from Qwen2.5-VL-32B (Qwen License).", "Qwen License", "which this rule does not accept"),
    ],
)
def test_a_declaration_must_name_the_source_and_its_true_permissive_licence(
    hcx, tmp_path, readme, licence, fragment
):
    declare(hcx.suspect, readme)
    result = audit(hcx.report, declared(tmp_path, licence=licence))
    (vision,) = evidence(result, "vision")
    assert result.outcome == Outcome.FAIL and vision.outcome == Outcome.FAIL and fragment in vision.note


def test_an_allow_without_declared_in_is_declared_by_the_policy_file_itself(hcx, tmp_path):
    declare(hcx.suspect, None)
    result = audit(hcx.report, declared(tmp_path, declared_in=""))
    assert result.outcome == Outcome.PASS
    assert "declared in the policy file itself" in evidence(result, "vision")[0].note


def test_solar_passes_strict_with_the_raw_cosine_trap_explained_not_used(solar):
    result = audit(solar.report, load_policy("strict"))
    assert result.outcome == Outcome.PASS and result.exit_code == 0, result.summary
    (lm,) = [e for e in rule(result, "original").evidence if e.subject == "language_model"]
    assert lm.outcome == Outcome.PASS and lm.verdict == "independent" and lm.power < 0.5
    (trap,) = lm.explained
    assert "raw cosine" in trap and "explained, not evidence" in trap
    assert "raw cosine" not in lm.note  # the verdict's note rests on Pearson and power only
    # Embeddings and head have other vocabulary sizes: paired row by row they are independent (or,
    # where nothing pairs, not comparable, which cannot be a plain copy); either way they pass.
    others = [e for e in rule(result, "original").evidence if e.subject in ("embeddings", "head")]
    assert {e.subject for e in others} == {"embeddings", "head"} and all(e.outcome == "PASS" for e in others)


def test_a_stricter_policy_can_refuse_parts_it_could_not_compare(solar, tmp_path):
    policy = write_policy(
        tmp_path,
        'extends = "strict"\n[[rule]]\nid = "every-component-original"\nnot_comparable = "undetermined"',
    )
    # Solar's head, had its shape matched nothing: the rest stays compared and independent.
    comps = [
        replace(c, verdict="not_comparable", tensors_compared=0, params_compared=0, provenance=[])
        if c.component_kind == "head"
        else c
        for c in solar.report.components
    ]
    report = replace(solar.report, components=comps)
    assert audit(report, load_policy("strict")).outcome == Outcome.PASS
    result = audit(report, load_policy(policy))
    assert result.outcome == Outcome.UNDETERMINED and result.exit_code == 3


@pytest.mark.parametrize("preset", ["strict", "declared-borrowing"])
def test_a_comparison_with_no_power_is_undetermined_never_pass(unrelated_shapes, preset):
    assert {c.verdict for c in unrelated_shapes.report.components} == {"not_comparable"}
    result = audit(unrelated_shapes.report, load_policy(preset))
    assert result.outcome == Outcome.UNDETERMINED and result.exit_code == 3
    coverage = rule(result, "coverage")
    assert (
        coverage.outcome == Outcome.UNDETERMINED and "could not have seen a copy" in coverage.evidence[0].note
    )


def test_the_original_share_rule_reads_the_per_layer_shares(hcx, tmp_path):
    template = 'extends = "strict"\n[[rule]]\nid = "share"\ntype = "original_share"\nmin = {min}'
    shares = audit(hcx.report, load_policy("strict")).share_by_verdict
    assert shares == hcx.report.share_by_verdict and sum(shares.values()) == pytest.approx(1)
    tested, possible = shares["independent"], 1 - shares["derived"] - shares["identical"]
    assert 0 < tested < possible < 1  # the projector was not compared: it could go either way
    for minimum, expected in (
        (tested - 0.01, Outcome.PASS),
        ((tested + possible) / 2, Outcome.UNDETERMINED),
        (possible + 0.01, Outcome.FAIL),
    ):
        policy = load_policy(write_policy(tmp_path, template.format(min=round(minimum, 6))))
        (share_rule,) = [r for r in audit(hcx.report, policy).rules if r.id == "share"]
        assert share_rule.outcome == expected, share_rule.summary


def test_warnings_never_decide_and_a_policy_without_deciding_rules_is_undetermined(solar, tmp_path):
    result = audit(solar.report, load_policy("strict"))
    tokenizer = [r for r in result.rules if r.type == "tokenizer"][0]
    assert tokenizer.severity == "warn" and tokenizer.outcome == Outcome.UNDETERMINED
    assert result.outcome == Outcome.PASS
    only_warnings = write_policy(tmp_path, '[[rule]]\nid = "t"\ntype = "tokenizer"\nseverity = "warn"')
    assert audit(solar.report, load_policy(only_warnings)).outcome == Outcome.UNDETERMINED


def test_a_partly_borrowed_component_names_its_borrowed_layers_and_blind_spots_are_shown(hcx):
    declare(hcx.suspect, None)
    vision = next(c for c in hcx.report.components if c.component_kind == "vision")
    lm = next(c for c in hcx.report.components if c.component_kind == "language_model")
    groups = vision.provenance
    partial = [replace(g, verdict="independent") if g.group == "layer 3" else g for g in groups]
    unsure = replace(lm, verdict="inconclusive", blind_spots=["norm gains folded into the next layer"])
    report = replace(
        hcx.report,
        components=[
            replace(vision, provenance=partial) if c is vision else unsure if c is lm else c
            for c in hcx.report.components
        ],
    )
    result = audit(report, load_policy("strict"))
    (vision_evidence,) = evidence(result, "vision")
    borrowed = [g.group for g in partial if g.verdict == "derived"]
    assert "layer 3" not in borrowed and f"borrowed: {', '.join(borrowed)}" in vision_evidence.note
    (lm_evidence,) = [e for e in rule(result, "original").evidence if e.subject == "language_model"]
    assert (
        lm_evidence.outcome == Outcome.UNDETERMINED and "blind spots: norm gains folded" in lm_evidence.note
    )


def test_a_base_model_in_the_model_card_is_a_declaration_not_a_leak(hcx, tmp_path):
    card = "---\nbase_model: Qwen/Qwen2.5-VL-32B-Instruct\n---\nVision from Qwen2.5-VL (Apache-2.0).\n"
    folder = tmp_path / "card"
    folder.mkdir()
    (folder / "README.md").write_text(card)
    (folder / "config.json").write_text("{}")
    metadata = {
        ref: {**channel, **compare_metadata(folder, Path(ref)).to_dict()}
        for ref, channel in hcx.report.metadata.items()
    }
    assert any("base_model" in " ".join(o["where"]) for o in next(iter(metadata.values()))["observations"])
    result = audit(replace(hcx.report, metadata=metadata), load_policy("strict"))
    (leak,) = [r for r in result.rules if r.type == "metadata_leak"]
    assert leak.outcome == Outcome.PASS and not leak.evidence
