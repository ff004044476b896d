"""Model names as a policy writes them, matched the way configs and model cards spell them.

``Qwen2.5-VL*`` must match the model type ``qwen2_5_vl``, the hub id ``Qwen/Qwen2.5-VL-32B-Instruct``
and the leaked path ``/mnt/ckpt/qwen2_5_vl_32b_visual/``: names are compared after the metadata
channel's normalisation (lower case, letters and digits only), with ``*`` as a wildcard.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from ..metadata.config import identifiers, normalise
from ..metadata.findings import ConfigFact

# Inside one whitespace-separated word, names are also split at path and markup separators.
_SEPARATORS = re.compile(r"[/\\()\[\]<>\"'`,;:]+")


def pattern(glob: str) -> re.Pattern[str]:
    """A normalised name pattern: ``Qwen2.5-VL*`` -> ``qwen25vl.*``."""
    return re.compile(".*".join(re.escape(normalise(part)) for part in glob.split("*")))


def matches(glob: str, names: set[str]) -> bool:
    """Whether any of the normalised ``names`` is the pattern ``glob``."""
    compiled = pattern(glob)
    return any(compiled.fullmatch(name) for name in names)


def names_in(text: str) -> set[str]:
    """Every name ``text`` mentions: each word and each of its path parts, normalised."""
    found = set()
    for word in text.split():
        found.add(normalise(word))
        found.update(normalise(part) for part in _SEPARATORS.split(word))
    found.discard("")
    return found


def reference_names(reference: str, metadata: dict[str, Any] | None) -> set[str]:
    """The names a reference goes by: its name (``org/name`` for a hub snapshot) and what its config
    says it is (model types, architectures, recorded names and paths)."""
    findings = (metadata or {}).get("reference") or {}
    facts = [ConfigFact(**f) for f in findings.get("config_facts", [])]
    name = findings.get("name") or PurePath(reference).name
    return set(identifiers(facts, name)) | names_in(name)
