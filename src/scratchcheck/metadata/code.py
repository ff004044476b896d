"""Code and licence channel: licences recognised by their text, copyright notices, and modeling code
that matches another model's (Jaccard of 3-line shingles after stripping comments and whitespace)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .config import front_matter
from .findings import CodeFile, CodeMatch, CopyrightLine, LicenceFinding, Observation, Problem

# (licence, model family or None for general licences, pattern). Model-specific licences come first:
# a Llama licence quotes no Apache text, but an Apache NOTICE may sit beside one.
_LICENCES: tuple[tuple[str, str | None, str], ...] = (
    ("Llama {0} Community License", "llama", r"LLAMA\s+(\d(?:\.\d)?)\s+COMMUNITY\s+LICEN[SC]E"),
    ("Qwen Research License", "qwen", r"(?:Qwen|Tongyi\s+Qianwen)\s+RESEARCH\s+LICEN[SC]E\s+AGREEMENT"),
    ("Qwen License", "qwen", r"(?:Qwen|Tongyi\s+Qianwen)\s+LICEN[SC]E\s+AGREEMENT"),
    ("Gemma Terms of Use", "gemma", r"Gemma\s+Terms\s+of\s+Use|ai\.google\.dev/gemma/terms"),
    ("DeepSeek License", "deepseek", r"DEEPSEEK\s+LICEN[SC]E\s+AGREEMENT"),
    ("NVIDIA Open Model License", "nvidia", r"NVIDIA\s+Open\s+Model\s+License"),
    ("HyperCLOVA X SEED Model License", "hyperclova", r"HyperCLOVA\s+X\s+SEED\s+Model\s+License"),
    ("Falcon LLM License", "falcon", r"Falcon\s+(?:LLM|180B)\s+(?:TII\s+)?License"),
    ("BigScience OpenRAIL-M", None, r"BigScience\s+(?:Open\s*)?RAIL"),
    ("CreativeML OpenRAIL-M", None, r"CreativeML\s+Open\s*RAIL"),
    ("Apache-2.0", None, r"Apache\s+License,?\s+Version\s+2\.0"),
    (
        "MIT",
        None,
        r"Permission\s+is\s+hereby\s+granted,\s+free\s+of\s+charge,\s+to\s+any\s+person\s+obtaining\s+a\s+copy",
    ),
    (
        "BSD-3-Clause",
        None,
        r"Neither\s+the\s+name\s+of\s.{1,200}?\s+nor\s+the\s+names\s+of\s+its\s+contributors",
    ),
    ("AGPL-3.0", None, r"GNU\s+AFFERO\s+GENERAL\s+PUBLIC\s+LICENSE\s+Version\s+3"),
    ("LGPL-{0}", None, r"GNU\s+LESSER\s+GENERAL\s+PUBLIC\s+LICENSE\s+Version\s+(\d(?:\.\d)?)"),
    ("GPL-{0}", None, r"GNU\s+GENERAL\s+PUBLIC\s+LICENSE\s+Version\s+(\d)"),
    ("MPL-2.0", None, r"Mozilla\s+Public\s+License,?\s+(?:Version|v\.)\s*2\.0"),
    (
        "CC-{0}-{1}",
        None,
        r"Creative\s+Commons\s+(Attribution(?:[-\s]+(?:NonCommercial|NoDerivatives|NoDerivs|ShareAlike))*)\s+(\d\.\d)",
    ),
    ("CC-{0}-{1}", None, r"\bCC[-\s](BY(?:-(?:NC|ND|SA))*)[-\s](\d\.\d)\b"),
)
_COMPILED = tuple(
    (name, family, re.compile(pattern, re.IGNORECASE | re.DOTALL)) for name, family, pattern in _LICENCES
)
_CC_WORDS = {
    "attribution": "BY",
    "noncommercial": "NC",
    "noderivatives": "ND",
    "noderivs": "ND",
    "sharealike": "SA",
}
_SPDX = re.compile(r"SPDX-License-Identifier:\s*([\w.\-+]+(?:\s+(?:OR|AND|WITH)\s+[\w.\-+]+)*)")
_FAMILIES = ("llama", "qwen", "gemma", "deepseek", "nvidia", "hyperclova", "falcon", "mistral", "glm", "phi")
_LICENCE_FILE = re.compile(r"(^|/)(LICEN[SC]E|NOTICE|COPYING)[^/]*$", re.IGNORECASE)
_COPYRIGHT = re.compile(
    r"\bcopyright\b.{0,12}?(?:\(c\)|©|\b(?:19|20)\d{2}\b)|©\s*(?:19|20)\d{2}", re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"\[yyyy\]|\{yyyy\}|name of copyright owner|<year>", re.IGNORECASE)
_CLASS = re.compile(r"^\s*class\s+([A-Za-z_]\w*)", re.MULTILINE)
_MAX_CODE_BYTES = 2 * 1024 * 1024
_SHINGLE = 3  # lines per shingle: long enough that boilerplate lines ("return x") rarely match alone
_STRONG_CODE = 0.5
_WEAK_CODE = 0.2
_MIN_SHINGLES = 10  # below this a file is too short for a similarity to mean anything


@dataclass(frozen=True)
class Code:
    """One Python file, normalised for comparison."""

    file: str
    shingles: frozenset[tuple[str, ...]]
    lines: int
    classes: tuple[str, ...]

    def summary(self) -> CodeFile:
        return CodeFile(self.file, self.lines, self.classes)


def scan_code_and_licences(
    files: dict[str, Path],
) -> tuple[list[Code], list[LicenceFinding], list[CopyrightLine], list[Problem]]:
    """Python files, licences and copyright notices among a model's metadata files."""
    code, licences, copyrights, problems = [], [], [], []
    for name, path in sorted(files.items()):
        is_python, is_licence = name.endswith(".py"), bool(_LICENCE_FILE.search(name))
        is_card = name.lower() == "readme.md"
        if not (is_python or is_licence or is_card):
            continue
        try:
            if path.stat().st_size > _MAX_CODE_BYTES:
                problems.append(Problem(name, f"larger than {_MAX_CODE_BYTES >> 20} MiB, not scanned"))
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            problems.append(Problem(name, f"cannot read: {exc.strerror or exc}"))
            continue
        if is_card:
            licences.extend(card_licences(text, name))
            continue
        licences.extend(detect_licences(text if is_licence else "\n".join(text.splitlines()[:100]), name))
        copyrights.extend(copyright_lines(text, name))
        if is_python:
            code.append(read_code(text, name))
    return code, licences, copyrights, problems


def detect_licences(text: str, file: str) -> list[LicenceFinding]:
    """Licences recognised by their text (and SPDX identifiers), each once per file."""
    found: dict[str, LicenceFinding] = {}
    for template, family, pattern in _COMPILED:
        for match in pattern.finditer(text):
            groups = match.groups()
            if template.startswith("CC-"):
                words = re.split(r"[-\s]+", groups[0])
                groups = ("-".join(_CC_WORDS.get(w.lower(), w.upper()) for w in words), groups[1])
            name = template.format(*groups)
            if name not in found and not any(f.family == family and family for f in found.values()):
                found[name] = LicenceFinding(file, name, family, " ".join(match.group(0).split()))
    for match in _SPDX.finditer(text):
        found.setdefault(f"SPDX:{match.group(1)}", LicenceFinding(file, match.group(1), None, match.group(0)))
    return list(found.values())


def card_licences(text: str, file: str) -> list[LicenceFinding]:
    """The ``license`` / ``license_name`` a model card declares in its YAML front matter."""
    front = front_matter(text)
    found = []
    for key in ("license", "license_name"):
        value = front.get(key)
        if isinstance(value, str) and value:
            family = next((f for f in _FAMILIES if f in value.lower()), None)
            found.append(LicenceFinding(file, value, family, f"{key}: {value}"))
    return found


def copyright_lines(text: str, file: str) -> list[CopyrightLine]:
    """Copyright notices with their line numbers, comment markers stripped, template placeholders skipped."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if _COPYRIGHT.search(line) and not _PLACEHOLDER.search(line):
            found.append(CopyrightLine(file, number, line.strip().strip("#*/ \t\"'")[:200]))
    return found


def read_code(text: str, file: str) -> Code:
    """Normalise a Python file: comments and blank lines dropped, whitespace collapsed, 3-line shingles."""
    lines = [code for line in text.splitlines() if (code := " ".join(_strip_comment(line).split()))]
    width = min(_SHINGLE, len(lines))
    shingles = (
        frozenset(tuple(lines[i : i + width]) for i in range(len(lines) - width + 1))
        if lines
        else frozenset()
    )
    return Code(file, shingles, len(lines), tuple(dict.fromkeys(_CLASS.findall(text))))


def _strip_comment(line: str) -> str:
    """The line up to a '#' that is not inside a string literal on that line."""
    quote, i = "", 0
    while i < len(line):
        if quote:
            if line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i, quote = i + len(quote), ""
                continue
        elif line[i] == "#":
            return line[:i]
        elif line[i] in "'\"":
            quote = line[i : i + 3] if line[i : i + 3] in ('"""', "'''") else line[i]
            i += len(quote)
            continue
        i += 1
    return line


def code_matches(suspect: list[Code], reference: list[Code]) -> list[CodeMatch]:
    """For each suspect file, its most similar reference file (most similar first)."""
    matches = []
    for mine in suspect:
        best = None
        for theirs in reference:
            shared = len(mine.shingles & theirs.shingles)
            union = len(mine.shingles | theirs.shingles)
            jaccard = shared / union if union else 0.0
            containment = shared / len(mine.shingles) if mine.shingles else 0.0
            classes = tuple(c for c in mine.classes if c in theirs.classes)
            candidate = CodeMatch(mine.file, theirs.file, jaccard, containment, classes)
            if best is None or (jaccard, containment, len(classes)) > (
                best.jaccard,
                best.containment,
                len(best.shared_classes),
            ):
                best = candidate
        if best is not None:
            matches.append(best)
    return sorted(matches, key=lambda m: (-m.jaccard, -m.containment, m.suspect_file))


def code_observations(
    matches: list[CodeMatch],
    suspect_code: list[Code],
    suspect_licences: list[LicenceFinding],
    reference_licences: list[LicenceFinding],
    suspect_copyrights: list[CopyrightLine],
    reference_copyrights: list[CopyrightLine],
    reference_names: dict[str, str],
) -> list[Observation]:
    """Plain-language readings of the code and licence channel, graded strong / weak / none."""
    notes = []
    sizes = {code.file: len(code.shingles) for code in suspect_code}
    for m in matches:
        if sizes.get(m.suspect_file, 0) < _MIN_SHINGLES:
            continue
        figures = f"{m.suspect_file} vs the reference's {m.reference_file}: code-line Jaccard {m.jaccard:.2f}, containment {m.containment:.2f}"
        if m.jaccard >= _STRONG_CODE or m.containment >= 0.8:
            notes.append(Observation(
                "code", "strong", figures + _notice_change(m, suspect_copyrights, reference_copyrights) + ".",
                "The suspect ships the reference's modeling code, lightly edited: evidence of shared code "
                "(the architecture's implementation), which licences often allow; not evidence about the weights.",
                (m.suspect_file, m.reference_file),
            ))  # fmt: skip
        elif m.jaccard >= _WEAK_CODE:
            notes.append(Observation(
                "code", "weak", figures + ".",
                "Partly shared code, possibly a common upstream (e.g. transformers); not evidence about the weights.",
                (m.suspect_file, m.reference_file),
            ))  # fmt: skip
    shared_classes = sorted({c for m in matches for c in m.shared_classes})
    if shared_classes:
        notes.append(Observation(
            "code", "weak", f"Class names defined in both models' code: {', '.join(shared_classes[:20])}.",
            "Shared class names show borrowed or common-upstream code; they say nothing about the weights.",
        ))  # fmt: skip
    notes.extend(_licence_observations(suspect_licences, reference_licences, reference_names))
    ref_notices = {" ".join(c.text.lower().split()) for c in reference_copyrights}
    for notice in suspect_copyrights:
        if " ".join(notice.text.lower().split()) in ref_notices:
            notes.append(Observation(
                "code", "weak", f"{notice.file} line {notice.line} carries the reference's copyright notice: {notice.text!r}.",
                "Text or code copied from the reference (as its licence may require); not evidence about the weights.",
                (f"{notice.file}:{notice.line}",),
            ))  # fmt: skip
    return notes


def _notice_change(match: CodeMatch, suspect: list[CopyrightLine], reference: list[CopyrightLine]) -> str:
    """How the copyright notices of a copied file differ, e.g. a header replaced or added in the copy."""
    mine = [c.text for c in suspect if c.file == match.suspect_file]
    theirs = [c.text for c in reference if c.file == match.reference_file]
    if mine == theirs:
        return ""
    return f"; its copyright notices {mine} differ from the reference file's {theirs}"


def _licence_observations(
    suspect: list[LicenceFinding], reference: list[LicenceFinding], reference_names: dict[str, str]
) -> list[Observation]:
    notes: dict[tuple[str, str], Observation] = {}  # one note per (licence, file kind) is enough
    ref_families = {f.family for f in reference if f.family}
    ref_general = {f.licence.lower() for f in reference if not f.family}
    for finding in suspect:
        where = (finding.file,)
        if finding.family and (
            finding.family in ref_families or any(finding.family in n for n in reference_names)
        ):
            notes[("strong", finding.licence)] = (Observation(
                "licence", "strong",
                f"The suspect's {finding.file} carries the {finding.licence} ({finding.evidence!r}), the reference family's own licence.",
                "Model-specific licences require derivatives to ship them: evidence that something (weights, "
                "tokenizer or code) was taken from that family; the weight verdicts say whether it was the weights.",
                where,
            ))  # fmt: skip
        elif finding.family:
            notes[("weak", finding.licence)] = (Observation(
                "licence", "weak",
                f"The suspect's {finding.file} carries the {finding.licence} ({finding.evidence!r}).",
                f"Something from the {finding.family} family is probably included; compare against that family's models.",
                where,
            ))  # fmt: skip
        elif finding.licence.lower() in ref_general:
            notes.setdefault(("none", finding.licence.lower()), Observation(
                "licence", "none",
                f"Both models are under {finding.licence} ({finding.file}).",
                "A common general-purpose licence: no evidence of derivation.",
                where,
            ))  # fmt: skip
    return list(notes.values())
