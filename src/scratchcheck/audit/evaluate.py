"""Apply a policy to a comparison: every rule in order, then the overall outcome from the ``fail`` rules."""

from __future__ import annotations

from collections.abc import Callable

from .. import __version__
from ..registry.against import RegistrySearch
from ..results import ComparisonReport
from . import channels, weights
from .declarations import Declarations
from .policy import Policy, Rule, RuleType, Severity
from .results import AUDIT_SCHEMA, AuditResult, Evidence, Outcome, PolicySummary, RuleResult, worst

Evaluator = Callable[[Rule, ComparisonReport, Declarations], tuple[Outcome, str, list[Evidence]]]

EVALUATORS: dict[RuleType, Evaluator] = {
    RuleType.ORIGINAL: weights.original,
    RuleType.ORIGINAL_SHARE: lambda rule, report, _: weights.original_share(rule, report),
    RuleType.COVERAGE: lambda rule, report, _: weights.coverage(rule, report),
    RuleType.METADATA_LEAK: channels.metadata_leak,
    RuleType.TOKENIZER: channels.tokenizer,
    RuleType.CODE_LICENCE: channels.code_licence,
}


def audit(report: ComparisonReport, policy: Policy, registry: RegistrySearch | None = None) -> AuditResult:
    """PASS, FAIL or UNDETERMINED for each rule of ``policy`` on ``report``, and overall;
    ``registry``: the registry ``report`` compared the suspect with (``compare_with_registry``)."""
    declarations = Declarations(policy.allows, report.suspect.path, report.metadata)
    results = []
    for rule in policy.rules:
        outcome, summary, evidence = EVALUATORS[rule.type](rule, report, declarations)
        results.append(
            RuleResult(
                rule.id, str(rule.type), str(rule.severity), rule.description, outcome, summary, evidence
            )
        )
    deciding = [r for r in results if r.severity == Severity.FAIL]
    # A policy with no deciding rule has checked nothing: that is not a pass.
    outcome = worst([r.outcome for r in deciding], empty=Outcome.UNDETERMINED)
    return AuditResult(
        schema=AUDIT_SCHEMA,
        outcome=outcome,
        suspect=report.suspect.path,
        references=[r.path for r in report.references],
        policy=PolicySummary(policy.name, policy.source, list(policy.extends), policy.description),
        rules=results,
        summary=_summary(outcome, deciding),
        comparison_verdict=report.verdict,
        share_by_verdict=weights.share_by_verdict(report),
        version=__version__,
        registry=registry,
    )


def _summary(outcome: Outcome, deciding: list[RuleResult]) -> str:
    if not deciding:
        return "UNDETERMINED: the policy has no rule of severity 'fail'"
    decided = [r.id for r in deciding if r.outcome == outcome]
    if outcome == Outcome.PASS:
        return f"PASS: all {len(deciding)} deciding rule(s) passed"
    return f"{outcome}: {', '.join(decided)}"
