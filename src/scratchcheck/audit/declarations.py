"""Declared borrowings (``[[allow]]``): which one covers a component, and whether it holds up.

A declaration holds when the file it points to (in the suspect's folder) names the source and the
licence, the licence is one the rule accepts, and it is the licence the reference's own files carry
(read by the metadata channel). An ``[[allow]]`` without ``declared_in`` is declared by the policy
file itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..metadata.config import normalise
from .names import matches, names_in, reference_names
from .policy import Allow
from .results import Outcome

_MAX_DECLARATION_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    note: str


class Declarations:
    """The policy's allows, checked against one suspect and the references it was compared with."""

    def __init__(self, allows: tuple[Allow, ...], suspect: str, metadata: dict[str, Any] | None) -> None:
        self.allows = allows
        path = Path(suspect)
        self.folder = path if path.is_dir() else path.parent
        self.metadata = metadata or {}

    def covering(self, reference: str, subjects: tuple[str, ...] | None = None) -> Allow | None:
        """The first allow whose source matches ``reference``, for any of ``subjects`` (component
        name or kind, "tokenizer"; None: any)."""
        names = reference_names(reference, self.metadata.get(reference))
        return next(
            (
                a
                for a in self.allows
                if (subjects is None or a.component in (*subjects, "*")) and matches(a.source, names)
            ),
            None,
        )

    def naming(self, value: str) -> Allow | None:
        """The first allow whose source is named in ``value`` (a leaked path or model id)."""
        names = names_in(value)
        return next((a for a in self.allows if matches(a.source, names)), None)

    def check(self, allow: Allow, reference: str | None, licences: tuple[str, ...] = ()) -> Check:
        """Whether ``allow`` holds: declared where it says, with a licence ``licences`` accepts (any
        when empty) that matches the reference's own."""
        what = f"borrowing from {allow.source!r}"
        if licences and allow.licence is None:
            return Check(
                Outcome.FAIL, f"the {what} declares no licence; this rule accepts {', '.join(licences)}"
            )
        if allow.licence and licences and normalise(allow.licence) not in {normalise(x) for x in licences}:
            return Check(
                Outcome.FAIL,
                f"the {what} is under {allow.licence}, which this rule does not accept ({', '.join(licences)})",
            )
        declared = self._declared(allow)
        if declared.outcome != Outcome.PASS or allow.licence is None or reference is None:
            return declared
        found = [f.get("licence", "") for f in self._findings(reference).get("licences", [])]
        if not found:
            return Check(
                Outcome.UNDETERMINED,
                f"{declared.note}; the reference's licence could not be read from its files, so {allow.licence} is unconfirmed",
            )
        if normalise(allow.licence) not in {normalise(x) for x in found}:
            return Check(
                Outcome.FAIL,
                f"{declared.note}, but the reference's own files carry {', '.join(found)}, not {allow.licence}",
            )
        return Check(Outcome.PASS, f"{declared.note}; the reference's files confirm {allow.licence}")

    def _declared(self, allow: Allow) -> Check:
        what = f"{allow.component} from {allow.source!r}" + (f" ({allow.licence})" if allow.licence else "")
        if allow.declared_in is None:
            return Check(Outcome.PASS, f"{what} declared in the policy file itself")
        path = self.folder / allow.declared_in
        try:
            if path.stat().st_size > _MAX_DECLARATION_BYTES:
                return Check(Outcome.FAIL, f"declaration {allow.declared_in} is too large to read")
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return Check(
                Outcome.FAIL, f"declaration missing: {allow.declared_in} is not in the suspect's folder"
            )
        if not matches(allow.source, names_in(text)):
            return Check(
                Outcome.FAIL, f"declaration missing: {allow.declared_in} does not name {allow.source!r}"
            )
        if allow.licence and normalise(allow.licence) not in normalise(text):
            return Check(
                Outcome.FAIL,
                f"{allow.declared_in} names {allow.source!r} but not its licence {allow.licence}",
            )
        return Check(Outcome.PASS, f"{what} declared in {allow.declared_in}")

    def _findings(self, reference: str) -> dict[str, Any]:
        return (self.metadata.get(reference) or {}).get("reference") or {}
