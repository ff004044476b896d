"""Evidence beyond the weights: config, tokenizer, code and licence channels, reported beside the
weight verdicts and never overriding them.

Entry points (a ``Checkpoint``, a folder path, or a plain ``{relative name: Path}`` mapping)::

    inspect_metadata(model) -> MetadataFindings        # one model's own findings
    compare_metadata(suspect, reference) -> MetadataComparison

Both are frozen dataclasses; ``to_dict()`` gives JSON-ready dicts of these shapes::

    MetadataFindings = {
      "name": str, "files": [str],                         # metadata files seen (relative names)
      "config_facts": [{"kind": str, "file": str, "json_path": str, "value": <JSON>}],
          # kind: model_type | architectures | name_or_path | commit_hash | auto_map |
          #       transformers_version | absolute_path | base_model | gguf
      "tokenizer": null | {"source": [str], "kind": str, "vocab_size": int, "num_merges": int,
                           "byte_level": bool, "special_tokens": [str], "first_merges": [str]},
      "licences": [{"file": str, "licence": str, "family": str | null, "evidence": str}],
      "copyrights": [{"file": str, "line": int, "text": str}],
      "code_files": [{"file": str, "code_lines": int, "classes": [str]}],
      "problems": [{"file": str, "reason": str}],          # missing / unreadable / malformed files
    }
    MetadataComparison = {
      "suspect": MetadataFindings, "reference": MetadataFindings,
      "config_diff": {"files_compared": [str], "only_suspect_files": [str], "only_reference_files": [str],
                      "equal_values": int,
                      "differences": [{"file", "json_path", "change": "changed" | "only_suspect" |
                                       "only_reference", "suspect": <JSON>, "reference": <JSON>}]},
      "tokenizer_overlap": null | {"suspect_vocab_size", "reference_vocab_size", "shared_tokens",
                      "jaccard": float, "same_id", "same_id_multichar", "suspect_merges",
                      "reference_merges", "shared_merges", "common_prefix_merges",
                      "longest_common_run", "run_start_suspect", "run_start_reference",
                      "ordered_common_merges", "shared_special_tokens": [str],
                      "suspect_only_special_tokens": [str], "reference_only_special_tokens": [str]},
      "code_matches": [{"suspect_file", "reference_file", "jaccard": float, "containment": float,
                        "shared_classes": [str]}],            # best reference file per suspect file
      "observations": [{"channel": "config" | "tokenizer" | "code" | "licence",
                        "strength": "strong" | "weak" | "none",
                        "finding": str,    # what was seen, values verbatim
                        "meaning": str,    # what it is and is not evidence of
                        "where": [str]}],  # "file $.json.path" or file names; strong first
    }

Render ``observations`` as the headline of the metadata section; the rest is supporting detail.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .code import Code, code_matches, code_observations, scan_code_and_licences
from .config import (
    card_facts,
    config_facts,
    config_observations,
    diff_configs,
    gguf_facts,
    identifiers,
    load_configs,
)
from .findings import (
    CodeMatch,
    ConfigDiff,
    ConfigFact,
    MetadataComparison,
    MetadataFindings,
    Observation,
    Problem,
    TokenizerOverlap,
)
from .tokenizer import Tokenizer, load_tokenizer, tokenizer_observations, tokenizer_overlap

if TYPE_CHECKING:
    from ..io import Checkpoint

# A Checkpoint, a model folder (or a file in it), or a plain {relative name: path} mapping.
ModelInput = Union["Checkpoint", Mapping[str, Path], str, os.PathLike]

__all__ = [
    "MetadataComparison",
    "MetadataFindings",
    "ModelInput",
    "Observation",
    "compare_metadata",
    "inspect_metadata",
    "tokenizer_of",
]

_ORDER = {"strong": 0, "weak": 1, "none": 2}


@dataclass(frozen=True)
class _Analysis:
    findings: MetadataFindings
    configs: dict[str, Any]
    tokenizer: Tokenizer | None
    code: list[Code]


def inspect_metadata(model: ModelInput, name: str | None = None) -> MetadataFindings:
    """One model's own metadata findings. ``model``: a Checkpoint, a folder, or ``{name: Path}``."""
    return _analyse(model, name).findings


def compare_metadata(suspect: ModelInput, reference: ModelInput) -> MetadataComparison:
    """Both models' findings, their config diff, tokenizer overlap, code similarity and observations."""
    mine, theirs = _analyse(suspect), _analyse(reference)
    diff: ConfigDiff = diff_configs(mine.configs, theirs.configs)
    overlap: TokenizerOverlap | None = None
    notes: list[Observation] = config_observations(
        list(mine.findings.config_facts),
        list(theirs.findings.config_facts),
        mine.findings.name,
        theirs.findings.name,
        diff,
    )
    if mine.tokenizer is not None and theirs.tokenizer is not None:
        overlap = tokenizer_overlap(mine.tokenizer, theirs.tokenizer)
        notes += tokenizer_observations(overlap)
    matches: list[CodeMatch] = code_matches(mine.code, theirs.code)
    notes += code_observations(
        matches,
        mine.code,
        list(mine.findings.licences),
        list(theirs.findings.licences),
        list(mine.findings.copyrights),
        list(theirs.findings.copyrights),
        identifiers(list(theirs.findings.config_facts), theirs.findings.name),
    )
    return MetadataComparison(
        suspect=mine.findings,
        reference=theirs.findings,
        config_diff=diff,
        tokenizer_overlap=overlap,
        code_matches=tuple(matches),
        observations=tuple(sorted(notes, key=lambda n: _ORDER[n.strength])),
    )


def tokenizer_of(model: ModelInput) -> Tokenizer | None:
    """The model's tokenizer, None if it has no readable one (embedding rows are then aligned by value)."""
    files, _, gguf = _sources(model)
    return load_tokenizer(files, gguf)[0]


def _analyse(model: ModelInput, name: str | None = None) -> _Analysis:
    files, default_name, gguf = _sources(model)
    name = name or default_name
    problems: list[Problem] = []
    if not files and not gguf:
        problems.append(Problem("(metadata)", "no metadata files found"))
    configs, config_problems = load_configs(files)
    facts: list[ConfigFact] = config_facts(configs) + card_facts(files)
    for file, metadata in gguf.items():
        facts += gguf_facts(metadata, file)
    if gguf and not configs:
        config_problems = [
            p for p in config_problems if not (p.file == "config.json" and p.reason == "missing")
        ]
    tokenizer, tokenizer_problems = load_tokenizer(files, gguf)
    if tokenizer is None and not tokenizer_problems:
        tokenizer_problems.append(
            Problem("tokenizer", "missing (no tokenizer.json, vocab files, .model or GGUF tokenizer)")
        )
    code, licences, copyrights, code_problems = scan_code_and_licences(files)
    findings = MetadataFindings(
        name=name,
        files=tuple(sorted(files) + sorted(gguf)),
        config_facts=tuple(facts),
        tokenizer=tokenizer.summary() if tokenizer else None,
        licences=tuple(dict.fromkeys(licences)),
        copyrights=tuple(copyrights),
        code_files=tuple(c.summary() for c in code),
        problems=tuple(problems + config_problems + tokenizer_problems + code_problems),
    )
    return _Analysis(findings, configs, tokenizer, code)


def _sources(model: ModelInput) -> tuple[dict[str, Path], str, dict[str, dict[str, Any]]]:
    """(metadata files, display name, GGUF header metadata by file name) of any accepted input."""
    if hasattr(model, "metadata_files"):  # a Checkpoint
        gguf = {
            Path(f.path).name: f.metadata
            for f in getattr(model, "files", [])
            if isinstance(getattr(f, "metadata", None), dict)
        }
        return dict(model.metadata_files), _display_name(Path(model.path)), gguf
    if isinstance(model, Mapping):
        files = {str(k): Path(v) for k, v in model.items()}
        # The model folder is what each path has before its relative name.
        roots = {Path(str(v)[: -len(k)] or ".") for k, v in files.items() if str(v).endswith(k)}
        return files, _display_name(roots.pop()) if len(roots) == 1 else "", {}
    from ..io.resolve import find_metadata_files

    folder = Path(model).expanduser()
    folder = folder if folder.is_dir() else folder.parent
    return find_metadata_files(folder), _display_name(folder), {}


def _display_name(path: Path) -> str:
    """``org/name`` for a Hugging Face cache snapshot, else the folder (or file) name."""
    for part in path.parts:
        if part.startswith("models--"):
            return part[len("models--") :].replace("--", "/")
    return path.name
