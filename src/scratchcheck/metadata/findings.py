"""Frozen results of the metadata channels; every one turns into a JSON-ready dict with ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

Strength = Literal["strong", "weak", "none"]
Channel = Literal["config", "tokenizer", "code", "licence"]


def _plain(value: Any) -> Any:
    """Dataclasses to dicts and tuples to lists, recursively; JSON values pass through unchanged."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """This result as a JSON-ready dict (field names as keys)."""
        return _plain(self)


@dataclass(frozen=True)
class Problem(_Record):
    """A metadata file that is missing, unreadable or malformed."""

    file: str
    reason: str


@dataclass(frozen=True)
class ConfigFact(_Record):
    """One identity-revealing value in a config file, verbatim, with where it was found.

    ``kind`` is one of ``model_type``, ``architectures``, ``name_or_path``, ``commit_hash``,
    ``auto_map``, ``transformers_version``, ``absolute_path``, ``base_model`` (model card) or
    ``gguf`` (a ``general.*`` GGUF key).
    """

    kind: str
    file: str
    json_path: str  # e.g. "$.vision_config.model_type"
    value: Any


@dataclass(frozen=True)
class TokenizerSummary(_Record):
    """What one model's tokenizer is: its files, algorithm and size."""

    source: tuple[str, ...]
    kind: str  # bpe | wordpiece | wordlevel | unigram | sentencepiece-bpe | sentencepiece-unigram | tiktoken
    vocab_size: int
    num_merges: int
    byte_level: bool
    special_tokens: tuple[str, ...]
    first_merges: tuple[str, ...]  # the first few merges as "a b"


@dataclass(frozen=True)
class LicenceFinding(_Record):
    """A licence recognised from its text (or declared in a model card / SPDX line)."""

    file: str
    licence: str  # e.g. "Apache-2.0", "Llama 3 Community License", "Qwen License"
    family: str | None  # the model family a model-specific licence belongs to; None for general licences
    evidence: str  # the matched text, verbatim


@dataclass(frozen=True)
class CopyrightLine(_Record):
    """A copyright notice in code or a licence file."""

    file: str
    line: int
    text: str


@dataclass(frozen=True)
class CodeFile(_Record):
    """A Python file shipped with the model."""

    file: str
    code_lines: int  # non-empty lines after stripping comments and whitespace
    classes: tuple[str, ...]


@dataclass(frozen=True)
class MetadataFindings(_Record):
    """One model's own metadata: config facts, tokenizer, code, licences and problems."""

    name: str
    files: tuple[str, ...]
    config_facts: tuple[ConfigFact, ...]
    tokenizer: TokenizerSummary | None
    licences: tuple[LicenceFinding, ...]
    copyrights: tuple[CopyrightLine, ...]
    code_files: tuple[CodeFile, ...]
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class ConfigDifference(_Record):
    """One value that differs between the two models' config files (None on the side that lacks it)."""

    file: str
    json_path: str
    change: Literal["changed", "only_suspect", "only_reference"]
    suspect: Any
    reference: Any


@dataclass(frozen=True)
class ConfigDiff(_Record):
    """Recursive diff of config files paired by relative name."""

    files_compared: tuple[str, ...]
    only_suspect_files: tuple[str, ...]
    only_reference_files: tuple[str, ...]
    equal_values: int
    differences: tuple[ConfigDifference, ...]


@dataclass(frozen=True)
class TokenizerOverlap(_Record):
    """How much two tokenizers share: token strings, their ids, merges and special tokens."""

    suspect_vocab_size: int
    reference_vocab_size: int
    shared_tokens: int
    jaccard: float  # shared / union of token strings
    same_id: int  # shared tokens with the same id in both
    same_id_multichar: (
        int  # of those, tokens longer than one character (single bytes/chars share ids trivially)
    )
    suspect_merges: int
    reference_merges: int
    shared_merges: int
    common_prefix_merges: int  # the first N merges are identical
    longest_common_run: int  # longest contiguous run of identical merges, anywhere
    run_start_suspect: int
    run_start_reference: int
    ordered_common_merges: int  # longest common subsequence of the two merge lists
    shared_special_tokens: tuple[str, ...]
    suspect_only_special_tokens: tuple[str, ...]
    reference_only_special_tokens: tuple[str, ...]


@dataclass(frozen=True)
class CodeMatch(_Record):
    """A suspect code file and its most similar reference code file."""

    suspect_file: str
    reference_file: str
    jaccard: float  # of 3-line shingles of normalised code
    containment: float  # share of the suspect's shingles also in the reference file
    shared_classes: tuple[str, ...]


@dataclass(frozen=True)
class Observation(_Record):
    """A plain-language reading of one finding: what it is, how strong, what it is and is not evidence of."""

    channel: Channel
    strength: Strength
    finding: str
    meaning: str
    where: tuple[str, ...] = ()  # "file $.json.path" or file names


@dataclass(frozen=True)
class MetadataComparison(_Record):
    """Both models' findings, the overlaps between them and the observations drawn from them."""

    suspect: MetadataFindings
    reference: MetadataFindings
    config_diff: ConfigDiff
    tokenizer_overlap: TokenizerOverlap | None
    code_matches: tuple[CodeMatch, ...]
    observations: tuple[Observation, ...]
