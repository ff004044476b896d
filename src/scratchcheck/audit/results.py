"""The audit's typed results and their JSON form (schema ``scratchcheck.audit/1``).

One ``RuleResult`` per rule: its outcome and the evidence behind it, each piece naming what it is
about (a component, a config key, the tokenizer) with the numbers a reader checks (verdict, p-value,
share, power, tensors). The overall result is decided by the rules of severity ``fail`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..registry.against import RegistrySearch
from ..results import to_jsonable

AUDIT_SCHEMA = "scratchcheck.audit/1"


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNDETERMINED = "UNDETERMINED"


# Worst first: a rule (and the audit) takes the worst outcome of its parts.
_ORDER = (Outcome.FAIL, Outcome.UNDETERMINED, Outcome.PASS)
EXIT_CODES = {Outcome.PASS: 0, Outcome.FAIL: 1, Outcome.UNDETERMINED: 3}


def worst(outcomes: list[Outcome], empty: Outcome = Outcome.PASS) -> Outcome:
    """The worst of several outcomes (FAIL > UNDETERMINED > PASS); ``empty`` when there are none."""
    return next((o for o in _ORDER if o in outcomes), empty)


@dataclass(frozen=True)
class Evidence:
    """One thing a rule looked at and what it found there."""

    subject: str  # a component, "config.json $.vision_model_name_or_path", "tokenizer", "model"
    outcome: Outcome
    note: str  # a plain sentence: what was found and why it gives this outcome
    reference: str | None = None
    verdict: str | None = None
    p_value: float | None = None
    share: float | None = None  # of the suspect's parameters
    coverage: float | None = None
    power: float | None = None  # smallest |r| the comparison would have detected
    tensors: list[str] = field(default_factory=list)  # a few tensors carrying the evidence
    explained: list[str] = field(default_factory=list)  # numbers shown but explained away, not evidence


@dataclass(frozen=True)
class RuleResult:
    id: str
    type: str
    severity: str  # fail | warn
    description: str
    outcome: Outcome
    summary: str
    evidence: list[Evidence] = field(default_factory=list)


@dataclass(frozen=True)
class PolicySummary:
    name: str
    source: str
    extends: list[str]
    description: str


@dataclass(frozen=True)
class AuditResult:
    schema: str
    outcome: Outcome
    suspect: str
    references: list[str]
    policy: PolicySummary
    rules: list[RuleResult]
    summary: str  # one line: the outcome and the rules that decided it
    comparison_verdict: str  # the comparison's overall verdict, for context
    share_by_verdict: dict[str, float] = field(default_factory=dict)
    version: str = ""
    registry: RegistrySearch | None = None  # set when audited against a registry

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)
