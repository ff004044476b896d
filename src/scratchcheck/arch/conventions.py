"""Naming conventions as data: ``arch/data/*.json`` plus an optional user mapping file.

A family file holds ``block`` rules (matched against the part of a name after the block index,
e.g. ``self_attn.q_proj.weight``) and ``top`` rules (matched against the whole name inside its
component, e.g. ``embed_tokens.weight``). A rule's ``match`` is literal text with placeholders
``{p}`` (``weight`` or ``bias``) and ``{e}`` (an expert index); ``role`` may use ``{p}`` and, for
fused tensors, ``{part}``. ``layout`` names how the stored tensor is normalised (see
``arch/roles.py``). ``components.json`` and ``nonlearned.json`` hold the component and buffer rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

from ..errors import FormatError

_PLACEHOLDERS = {"{p}": r"(?P<p>weight|bias)", "{e}": r"(?P<e>\d+)"}
_SPLIT = re.compile(r"(\{p\}|\{e\})")
LAYOUTS = {
    "split_qkv",
    "split_gate_up",
    "transpose",
    "transpose_split_qkv",
    "unstack_experts",
    "unstack_experts_in_out",
    "unstack_experts_gate_up",
    "flatten",
    "join_temporal",
    "part",
}


@dataclass(frozen=True)
class RoleRule:
    family: str
    template: str  # the rule's "match", e.g. "mlp.experts.{e}.gate_proj.weight"
    role: str
    layout: str = ""
    interleaved_for: tuple[str, ...] = ()  # model types whose fused gate/up alternates gate, up

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return compile_match(self.template)

    @cached_property
    def _ends(self) -> tuple[str, str]:
        pieces = _SPLIT.split(self.template)
        return pieces[0], pieces[-1]

    def fullmatch(self, text: str) -> re.Match[str] | None:
        """The rule's match of the whole of ``text``. A name that does not start and end with the
        template's literal ends cannot match; only a rule that passes is compiled (a process
        compiles a few of the ~300 rules, not all of them: 30 ms of every command)."""
        head, tail = self._ends
        if not (text.startswith(head) and text.endswith(tail)):
            return None
        return self.pattern.fullmatch(text)


@dataclass(frozen=True)
class ComponentRule:
    pattern: re.Pattern[str]
    kind: str
    name: str
    model_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Conventions:
    components: tuple[ComponentRule, ...]
    block: re.Pattern[str]
    block_roles: tuple[RoleRule, ...]
    top_roles: tuple[RoleRule, ...]
    extra_markers: tuple[str, ...]
    extra_kind: str
    extra_name: str
    buffers: tuple[tuple[re.Pattern[str], str], ...]
    # rule lookups by name: a layer's names recur in every layer (tens of thousands in a MoE)
    _found: dict[tuple[bool, str], tuple[RoleRule, re.Match[str]] | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def block_role(self, rest: str) -> tuple[RoleRule, re.Match[str]] | None:
        return self._lookup(True, rest)

    def top_role(self, local: str) -> tuple[RoleRule, re.Match[str]] | None:
        return self._lookup(False, local)

    def _lookup(self, block: bool, text: str) -> tuple[RoleRule, re.Match[str]] | None:
        key = (block, text)
        if key not in self._found:
            self._found[key] = _first(self.block_roles if block else self.top_roles, text)
        return self._found[key]

    def buffer_reason(self, name: str) -> str | None:
        """Why ``name`` is a buffer by its name alone, or None."""
        return next((reason for pattern, reason in self.buffers if pattern.search(name)), None)


def _first(rules: tuple[RoleRule, ...], text: str) -> tuple[RoleRule, re.Match[str]] | None:
    for rule in rules:
        match = rule.fullmatch(text)
        if match:
            return rule, match
    return None


def compile_match(template: str) -> re.Pattern[str]:
    """``"mlp.experts.{e}.gate_proj.weight"`` -> a regex with groups ``e`` (and ``p``)."""
    pieces = [_PLACEHOLDERS.get(piece, re.escape(piece)) for piece in _SPLIT.split(template)]
    return re.compile("".join(pieces))


def _role_rules(data: dict, scope: str, family: str, source: Path | str) -> list[RoleRule]:
    rules = []
    for raw in data.get(scope, []):
        if not isinstance(raw, dict) or not isinstance(raw.get("match"), str) or "role" not in raw:
            raise FormatError(Path(str(source)), f"{scope} rule needs 'match' and 'role': {raw!r}")
        layout = raw.get("layout", "")
        if layout and layout not in LAYOUTS:
            raise FormatError(Path(str(source)), f"unknown layout {layout!r} (known: {sorted(LAYOUTS)})")
        interleaved = raw.get("interleaved_for", [])
        if not isinstance(interleaved, list) or not all(isinstance(t, str) for t in interleaved):
            raise FormatError(Path(str(source)), f"'interleaved_for' must be a list of model types: {raw!r}")
        interleaved = tuple(interleaved)
        rules.append(RoleRule(family, raw["match"], raw["role"], layout, interleaved))
    return rules


def _component_rules(data: dict) -> list[ComponentRule]:
    return [
        ComponentRule(re.compile(r["pattern"]), r["kind"], r["name"], tuple(r.get("model_types", ())))
        for r in data.get("components", [])
    ]


def _read(path: Path | resources.abc.Traversable) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(Path(str(path)), f"invalid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise FormatError(Path(str(path)), "a conventions file must hold a JSON object")
    return data


@lru_cache(maxsize=8)
def load_conventions(extra: Path | None = None) -> Conventions:
    """The built-in conventions, with the rules of ``extra`` (a user mapping file) tried first."""
    folder = resources.files("scratchcheck.arch") / "data"
    base = _read(folder / "components.json")
    buffers = _read(folder / "nonlearned.json")
    families = sorted((f for f in folder.iterdir() if f.name.endswith(".json")), key=lambda f: f.name)
    files = [(f, _read(f)) for f in families if f.name not in {"components.json", "nonlearned.json"}]
    if extra is not None:
        files.insert(0, (extra, _read(Path(extra))))
    block, top, components = [], [], []
    for source, data in files:
        family = data.get("family", Path(str(source)).stem)
        block += _role_rules(data, "block", family, source)
        top += _role_rules(data, "top", family, source)
        components += _component_rules(data)  # only user files add components; they come first
    return Conventions(
        components=tuple(components + _component_rules(base)),
        block=re.compile(base["block"]),
        block_roles=tuple(block),
        top_roles=tuple(top),
        extra_markers=tuple(base["extra_layer_markers"]),
        extra_kind=base["extra_component"]["kind"],
        extra_name=base["extra_component"]["name"],
        buffers=tuple((re.compile(b["pattern"]), b["reason"]) for b in buffers["names"]),
    )
