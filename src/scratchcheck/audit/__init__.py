"""From-scratch audits: an explicit policy applied to a comparison, PASS / FAIL / UNDETERMINED per rule.

    from scratchcheck import compare
    from scratchcheck.audit import audit, load_policy
    result = audit(compare("suspect/", ["reference/"]), load_policy("declared-borrowing"))
    print(result.outcome, [(r.id, r.outcome) for r in result.rules])

Policies are TOML (``presets/*.toml`` ship with the package; ``policy.schema.json`` documents every
key); ``docs/audit.md`` explains them for readers who are not ML engineers.
"""

from __future__ import annotations

from .evaluate import audit
from .policy import PRESETS, Allow, Policy, Rule, RuleType, Severity, load_policy
from .results import AUDIT_SCHEMA, AuditResult, Evidence, Outcome, RuleResult

__all__ = [
    "AUDIT_SCHEMA",
    "PRESETS",
    "Allow",
    "AuditResult",
    "Evidence",
    "Outcome",
    "Policy",
    "Rule",
    "RuleResult",
    "RuleType",
    "Severity",
    "audit",
    "load_policy",
]
