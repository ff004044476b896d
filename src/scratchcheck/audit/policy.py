"""Audit policies: TOML files (or the shipped presets) read, inherited and validated into typed rules.

A policy is data, not code: ``presets/*.toml`` ship with the package and a user's file can start
from one (``extends``) and change or add rules. Every problem is one line naming the file and the
key (``PolicyError``), found before any model is read.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from ..errors import PolicyError
from .schema_check import first_error

PRESETS_DIR = Path(__file__).with_name("presets")
SCHEMA_FILE = Path(__file__).with_name("policy.schema.json")
PRESETS = tuple(sorted(p.stem for p in PRESETS_DIR.glob("*.toml")))


class RuleType(StrEnum):
    ORIGINAL = "original"
    ORIGINAL_SHARE = "original_share"
    COVERAGE = "coverage"
    METADATA_LEAK = "metadata_leak"
    TOKENIZER = "tokenizer"
    CODE_LICENCE = "code_licence"


class Severity(StrEnum):
    FAIL = "fail"  # decides the overall result
    WARN = "warn"  # reported, never decides
    OFF = "off"  # not evaluated


@dataclass(frozen=True)
class Allow:
    """A declared borrowing: ``component`` may come from a model matching ``source``."""

    component: str
    source: str  # the TOML key ``from``
    licence: str | None = None
    declared_in: str | None = None  # relative to the suspect's folder; None: the policy file declares it


@dataclass(frozen=True)
class Rule:
    """One checkable requirement; which fields apply depends on ``type`` (see policy.schema.json)."""

    id: str
    type: RuleType
    severity: Severity = Severity.FAIL
    description: str = ""
    components: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    allow_declared: bool = False
    not_comparable: Literal["pass", "undetermined"] = "pass"  # a component whose shapes match no reference's
    licences: tuple[str, ...] = ()  # licences a declared borrowing may carry; empty: any
    min: float = 0.0  # original_share
    min_coverage: float = 0.0
    max_detectable_r: float = 0.5
    max_jaccard: float = 0.9


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    source: str  # a preset name or the file's path
    extends: tuple[str, ...]  # what it was built on, nearest first
    rules: tuple[Rule, ...]
    allows: tuple[Allow, ...] = ()


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a policy file."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def load_policy(spec: str | Path) -> Policy:
    """A preset by name (``strict``, ``declared-borrowing``) or a policy file."""
    if str(spec) in PRESETS:
        path, label = PRESETS_DIR / f"{spec}.toml", str(spec)
    else:
        path, label = Path(spec), str(spec)
        if path.suffix != ".toml" and not path.exists():
            raise PolicyError(spec, f"no such preset or policy file (presets: {', '.join(PRESETS)})")
    layer = _resolve(path, label, ())
    return Policy(
        name=layer.name,
        description=layer.description,
        source=label,
        extends=layer.extends,
        rules=tuple(_rule(e) for e in layer.rules.values() if e.get("severity") != Severity.OFF),
        allows=layer.allows,
    )


@dataclass(frozen=True)
class _Layer:
    """A policy file with everything it inherits applied; rules still as (validated) TOML tables."""

    name: str
    description: str
    extends: tuple[str, ...]
    rules: dict[str, dict[str, Any]]
    allows: tuple[Allow, ...]


def _resolve(path: Path, label: str, seen: tuple[Path, ...]) -> _Layer:
    if path.resolve() in seen:
        raise PolicyError(label, "extends itself (directly or through the files it extends)")
    raw = _read(path, label)
    schema = load_schema()
    _raise(label, first_error(raw, schema))
    base = _base(raw.get("extends"), path, label, (*seen, path.resolve()))
    rules = dict(base.rules) if base else {}
    for i, entry in enumerate(raw.get("rule", [])):
        inherited = rules.get(entry["id"], {})
        if "type" in entry and inherited and entry["type"] != inherited["type"]:
            _raise(label, (f"rule[{i}].type", f"cannot change the type of inherited rule {entry['id']!r}"))
        rules[entry["id"]] = {**inherited, **entry}
        problem = first_error(rules[entry["id"]], {"$ref": "#/$defs/rule"}, schema)
        if problem:
            key = "" if problem[0] == "(top level)" else f".{problem[0]}"
            _raise(label, (f"rule[{i}]{key}", f"(id {entry['id']!r}) {problem[1]}"))
    return _Layer(
        name=raw.get("name", path.stem),
        description=raw.get("description", base.description if base else ""),
        extends=(raw["extends"], *base.extends) if base else (),
        rules=rules,
        allows=(*(base.allows if base else ()), *(_allow(a) for a in raw.get("allow", []))),
    )


def _read(path: Path, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(label, "no such policy file") from None
    except OSError as exc:
        raise PolicyError(label, f"cannot read the policy: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyError(label, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(label, f"not valid TOML: {exc}") from None


def _base(extends: str | None, path: Path, label: str, seen: tuple[Path, ...]) -> _Layer | None:
    if extends is None:
        return None
    if extends in PRESETS:
        return _resolve(PRESETS_DIR / f"{extends}.toml", extends, seen)
    parent = path.parent / extends
    if parent.suffix != ".toml" or not parent.is_file():
        raise PolicyError(
            label,
            f"extends: {extends!r} is neither a preset ({', '.join(PRESETS)}) nor a .toml file beside it",
        )
    return _resolve(parent, str(parent), seen)


def _rule(entry: dict[str, Any]) -> Rule:
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
    values["type"] = RuleType(values["type"])
    values["severity"] = Severity(values.get("severity", "fail"))
    return Rule(**values)


def _allow(entry: dict[str, Any]) -> Allow:
    return Allow(entry["component"], entry["from"], entry.get("license"), entry.get("declared_in"))


def _raise(label: str, problem: tuple[str, str] | None) -> None:
    if problem is not None:
        raise PolicyError(label, f"{problem[0]}: {problem[1]}")
