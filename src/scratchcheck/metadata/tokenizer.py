"""Tokenizer channel: read a model's tokenizer from any common file and measure what two tokenizers share.

Sources, in order of preference: ``tokenizer.json`` (Hugging Face tokenizers), ``vocab.json`` +
``merges.txt`` (GPT-2 style), ``vocab.txt`` (WordPiece), a SentencePiece ``.model`` (protobuf, read
here without the sentencepiece package), a tiktoken rank file, and a GGUF header's ``tokenizer.ggml.*``.
What counts as evidence: the full vocabulary with its ids and the order of merges. What does not:
vocabulary size (a design choice) and the first byte-level BPE merges (nearly universal).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .findings import Observation, Problem, TokenizerOverlap, TokenizerSummary

_SP_TYPES = {"unigram": 1, "bpe": 2}  # sentencepiece TrainerSpec.model_type
_SP_SPECIAL = {2, 3, 4}  # SentencePiece.Type: UNKNOWN, CONTROL, USER_DEFINED
_GGUF_SPECIAL = {2, 3, 4}  # tokenizer.ggml.token_type: unknown, control, user defined
_TIKTOKEN_LINE = re.compile(rb"^[A-Za-z0-9+/=]+ \d+\r?$")
# Special tokens so widespread that sharing them says nothing.
_GENERIC_SPECIALS = {
    "<s>", "</s>", "<unk>", "<pad>", "<mask>", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]",
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>", "<eos>", "<bos>",
}  # fmt: skip
# Thresholds (heuristic, conservative). Independent tokenizers trained on similar languages share a
# large part of their common words, so token-string overlap alone needs to be very high to mean much.
_STRONG_JACCARD = 0.8
_WEAK_JACCARD = 0.3
# Token ids follow training order; the byte alphabet and a few early merges coincide for any two
# byte-level BPEs, a thousand multi-character tokens at the same ids do not.
_STRONG_SAME_IDS = 1000
# The first merges of byte-level BPE on any web text are the same ("Ġ t", "h e", "i n", ...).
_WEAK_MERGE_RUN = 100
_STRONG_MERGE_RUN = 1000


class Malformed(ValueError):
    """A tokenizer file that cannot be read; the message is the one-line reason."""


@dataclass
class Tokenizer:
    """A tokenizer's full data, for comparison (only its ``summary()`` is reported)."""

    source: tuple[str, ...]
    kind: str
    vocab: dict[str, int]
    merges: list[tuple[str, str]] = field(default_factory=list)
    special: set[str] = field(default_factory=set)
    byte_level: bool = False

    def summary(self) -> TokenizerSummary:
        return TokenizerSummary(
            source=self.source,
            kind=self.kind,
            vocab_size=len(self.vocab),
            num_merges=len(self.merges),
            byte_level=self.byte_level,
            special_tokens=tuple(sorted(self.special)),
            first_merges=tuple(f"{a} {b}" for a, b in self.merges[:10]),
        )


# -- reading -----------------------------------------------------------------------------------------


def load_tokenizer(
    files: dict[str, Path], gguf: dict[str, dict[str, Any]] | None = None
) -> tuple[Tokenizer | None, list[Problem]]:
    """The model's tokenizer from the first readable source; unreadable sources become problems."""
    problems: list[Problem] = []
    for name, reader in _candidates(files, gguf or {}):
        try:
            tokenizer = reader()
        except Malformed as exc:
            problems.append(Problem(name, str(exc)))
            continue
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            problems.append(Problem(name, f"malformed tokenizer data: {type(exc).__name__}: {exc}"))
            continue
        except OSError as exc:
            problems.append(Problem(name, f"cannot read: {exc.strerror or exc}"))
            continue
        tokenizer.special |= _special_tokens_map(files, problems)
        return tokenizer, problems
    return None, problems


def _candidates(files: dict[str, Path], gguf: dict[str, dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    # Top-level files first: sub-folders may hold a second model's tokenizer (e.g. a text encoder).
    names = sorted(files, key=lambda n: (n.count("/"), n))
    for name in names:
        base, folder = name.rsplit("/", 1)[-1], name.rpartition("/")[0]
        if base == "tokenizer.json":
            yield name, lambda n=name: read_tokenizer_json(files[n], n)
        elif base == "vocab.json":
            merges = f"{folder}/merges.txt" if folder else "merges.txt"
            yield name, lambda n=name, m=merges: read_vocab_json(files[n], n, files.get(m), m)
        elif base == "vocab.txt":
            yield name, lambda n=name: read_vocab_txt(files[n], n)
    for name in names:
        if name.endswith((".model", ".tiktoken")):
            yield name, lambda n=name: read_model_file(files[n], n)
    for name, metadata in gguf.items():
        if "tokenizer.ggml.tokens" in metadata:
            yield name, lambda n=name, m=metadata: tokenizer_from_gguf(m, n)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise Malformed("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise Malformed(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # e.g. nesting or integers beyond Python's limits
        raise Malformed(f"unreadable JSON: {type(exc).__name__}") from None


def _merge_pair(merge: Any) -> tuple[str, str]:
    if isinstance(merge, list) and len(merge) == 2:
        return str(merge[0]), str(merge[1])
    if isinstance(merge, str) and " " in merge:
        left, _, right = merge.partition(" ")
        return left, right
    raise Malformed(f"merge {merge!r} is neither 'a b' nor [a, b]")


def read_tokenizer_json(path: Path, name: str) -> Tokenizer:
    """A Hugging Face ``tokenizer.json`` (BPE, WordPiece, WordLevel or Unigram model)."""
    data = _load_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or "vocab" not in model:
        raise Malformed("no model.vocab")
    raw_vocab = model["vocab"]
    if isinstance(raw_vocab, dict):
        vocab = {str(token): int(i) for token, i in raw_vocab.items()}
    elif isinstance(raw_vocab, list):  # Unigram: [[piece, score], ...], id = position
        vocab = {}
        for i, entry in enumerate(raw_vocab):
            vocab.setdefault(str(entry[0] if isinstance(entry, list) else entry), i)
    else:
        raise Malformed("model.vocab is neither a dict nor a list")
    kind = str(
        model.get("type")
        or ("BPE" if "merges" in model else "Unigram" if isinstance(raw_vocab, list) else "WordPiece")
    )
    merges = [_merge_pair(m) for m in model.get("merges") or []]
    special = set()
    for added in data.get("added_tokens") or []:
        if isinstance(added, dict) and "content" in added:
            vocab.setdefault(str(added["content"]), int(added.get("id", -1)))
            if added.get("special"):
                special.add(str(added["content"]))
    byte_level = '"ByteLevel"' in json.dumps([data.get("pre_tokenizer"), data.get("decoder")])
    return Tokenizer((name,), kind.lower(), vocab, merges, special, byte_level)


def read_vocab_json(path: Path, name: str, merges_path: Path | None, merges_name: str) -> Tokenizer:
    """GPT-2 style ``vocab.json`` with ``merges.txt`` beside it (merges optional)."""
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise Malformed("vocab.json is not a token -> id object")
    vocab = {str(token): int(i) for token, i in raw.items()}
    merges: list[tuple[str, str]] = []
    source = (name,)
    if merges_path is not None:
        for line in merges_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip() and not line.startswith("#version"):
                merges.append(_merge_pair(line))
        source = (name, merges_name)
    byte_level = any(token.startswith("Ġ") for token in vocab)
    return Tokenizer(source, "bpe", vocab, merges, set(), byte_level)


def read_vocab_txt(path: Path, name: str) -> Tokenizer:
    """WordPiece ``vocab.txt``: one token a line, the id is the line number."""
    vocab: dict[str, int] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n")):
        token = line.rstrip("\r")
        if token or i == 0:
            vocab.setdefault(token, i)
    if not vocab:
        raise Malformed("empty vocabulary")
    special = {token for token in vocab if re.fullmatch(r"\[[A-Z]+\]", token)}
    return Tokenizer((name,), "wordpiece", vocab, [], special, False)


def read_model_file(path: Path, name: str) -> Tokenizer:
    """A SentencePiece model (protobuf) or a tiktoken rank file (Llama 3 also calls it ``tokenizer.model``)."""
    data = path.read_bytes()
    first_line = data.split(b"\n", 1)[0]
    if _TIKTOKEN_LINE.match(first_line):
        return _read_tiktoken(data, name)
    return _read_sentencepiece(data, name)


def _read_tiktoken(data: bytes, name: str) -> Tokenizer:
    to_unicode = bytes_to_unicode()
    vocab = {}
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            encoded, rank = line.split()
            token = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise Malformed(f"line {number} is not 'base64 rank'") from None
        # The same byte -> character mapping as GPT-2's vocab.json, so both compare token for token.
        vocab.setdefault("".join(to_unicode[b] for b in token), int(rank))
    return Tokenizer((name,), "tiktoken", vocab, [], set(), True)


def _read_sentencepiece(data: bytes, name: str) -> Tokenizer:
    vocab: dict[str, int] = {}
    special: set[str] = set()
    kind = "sentencepiece"
    for number, wire, value in _protobuf_fields(data, "ModelProto"):
        if number == 1 and wire == 2:  # repeated SentencePiece pieces
            piece, piece_type = None, 1
            for sub, sub_wire, sub_value in _protobuf_fields(value, f"piece {len(vocab)}"):
                if sub == 1 and sub_wire == 2:
                    piece = sub_value.decode("utf-8", errors="replace")
                elif sub == 3 and sub_wire == 0:
                    piece_type = sub_value
            if piece is None:
                raise Malformed(f"piece {len(vocab)} has no text")
            vocab.setdefault(piece, len(vocab))
            if piece_type in _SP_SPECIAL:
                special.add(piece)
        elif number == 2 and wire == 2:  # TrainerSpec: field 3 is model_type
            for sub, sub_wire, sub_value in _protobuf_fields(value, "trainer_spec"):
                if sub == 3 and sub_wire == 0:
                    kind += {v: f"-{k}" for k, v in _SP_TYPES.items()}.get(sub_value, "")
    if not vocab:
        raise Malformed("no SentencePiece pieces (not a SentencePiece model?)")
    byte_level = any(re.fullmatch(r"<0x[0-9A-F]{2}>", piece) for piece in vocab)
    return Tokenizer((name,), kind, vocab, [], special, byte_level)


def _varint(data: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise Malformed(f"truncated protobuf in {where}: varint runs past byte {len(data)}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise Malformed(f"invalid protobuf in {where}: varint longer than 10 bytes at byte {pos}")


def _protobuf_fields(data: bytes, where: str) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message, every length checked."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos, where)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Malformed(f"invalid protobuf in {where}: field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(data, pos, where)
        elif wire in (1, 2, 5):
            size = 8 if wire == 1 else 4 if wire == 5 else None
            if size is None:
                size, pos = _varint(data, pos, where)
            if pos + size > len(data):
                raise Malformed(
                    f"truncated protobuf in {where}: field {number} needs {size} bytes at byte {pos}, {len(data) - pos} left"
                )
            value = data[pos : pos + size]
            if wire == 5:
                value = struct.unpack("<f", value)[0]
            pos += size
        else:
            raise Malformed(f"invalid protobuf in {where}: wire type {wire} at byte {pos}")
        yield number, wire, value


def tokenizer_from_gguf(metadata: dict[str, Any], name: str) -> Tokenizer:
    """A tokenizer from a GGUF header's ``tokenizer.ggml.*`` keys."""
    tokens = [_text(t) for t in metadata.get("tokenizer.ggml.tokens") or []]
    if not tokens:
        raise Malformed("tokenizer.ggml.tokens is empty")
    model = _text(metadata.get("tokenizer.ggml.model", ""))
    merges = [_merge_pair(_text(m)) for m in metadata.get("tokenizer.ggml.merges") or []]
    types = list(metadata.get("tokenizer.ggml.token_type") or [])
    special = {t for t, kind in zip(tokens, types, strict=False) if int(kind) in _GGUF_SPECIAL}
    vocab: dict[str, int] = {}
    for i, token in enumerate(tokens):
        vocab.setdefault(token, i)
    kind = {"gpt2": "bpe", "llama": "sentencepiece", "bert": "wordpiece"}.get(model, model or "unknown")
    return Tokenizer((name,), kind, vocab, merges, special, model == "gpt2")


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _special_tokens_map(files: dict[str, Path], problems: list[Problem]) -> set[str]:
    path = files.get("special_tokens_map.json")
    if path is None:
        return set()
    try:
        data = _load_json(path)
    except (Malformed, OSError) as exc:
        problems.append(Problem("special_tokens_map.json", str(exc)))
        return set()
    found = set()
    for value in data.values() if isinstance(data, dict) else ():
        for item in value if isinstance(value, list) else [value]:
            content = item.get("content") if isinstance(item, dict) else item
            if isinstance(content, str):
                found.add(content)
    return found


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (space is 'Ġ', newline 'Ċ')."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


# -- comparing ---------------------------------------------------------------------------------------


def tokenizer_overlap(suspect: Tokenizer, reference: Tokenizer) -> TokenizerOverlap:
    """Shared tokens (Jaccard, same ids), shared merges (prefix, longest run, ordered) and special tokens."""
    shared = suspect.vocab.keys() & reference.vocab.keys()
    union = len(suspect.vocab) + len(reference.vocab) - len(shared)
    same = [t for t in shared if suspect.vocab[t] == reference.vocab[t]]
    ref_index: dict[tuple[str, str], int] = {}
    for i, merge in enumerate(reference.merges):
        ref_index.setdefault(merge, i)
    prefix = 0
    for a, b in zip(suspect.merges, reference.merges, strict=False):
        if a != b:
            break
        prefix += 1
    # Merges are (nearly) unique, so a common contiguous run is a stretch where the reference
    # index advances by one with each suspect merge: one linear pass instead of an O(n*m) table.
    best, best_at, run, previous = 0, (0, 0), 0, None
    positions = []
    for i, merge in enumerate(suspect.merges):
        j = ref_index.get(merge)
        run = run + 1 if j is not None and previous is not None and j == previous + 1 else int(j is not None)
        if run > best:
            best, best_at = run, (i - run + 1, (j or 0) - run + 1)
        previous = j
        if j is not None:
            positions.append(j)
    return TokenizerOverlap(
        suspect_vocab_size=len(suspect.vocab),
        reference_vocab_size=len(reference.vocab),
        shared_tokens=len(shared),
        jaccard=len(shared) / union if union else 0.0,
        same_id=len(same),
        same_id_multichar=sum(len(t) > 1 for t in same),
        suspect_merges=len(suspect.merges),
        reference_merges=len(reference.merges),
        shared_merges=len(set(suspect.merges) & set(reference.merges)),
        common_prefix_merges=prefix,
        longest_common_run=best,
        run_start_suspect=best_at[0],
        run_start_reference=best_at[1],
        ordered_common_merges=_longest_increasing(positions),
        shared_special_tokens=tuple(sorted(suspect.special & reference.special)),
        suspect_only_special_tokens=tuple(sorted(suspect.special - reference.special)),
        reference_only_special_tokens=tuple(sorted(reference.special - suspect.special)),
    )


def _longest_increasing(values: list[int]) -> int:
    """Length of the longest strictly increasing subsequence (patience sorting, n log n)."""
    tails: list[int] = []
    for value in values:
        k = bisect_left(tails, value)
        tails[k : k + 1] = [value]
    return len(tails)


def tokenizer_observations(overlap: TokenizerOverlap) -> list[Observation]:
    """Plain-language readings of a tokenizer overlap, graded strong / weak / none."""
    o = overlap
    pct = f"{100 * o.jaccard:.1f}%"
    same_vocab = o.jaccard == 1.0 and o.same_id == o.shared_tokens
    same_merges = o.suspect_merges == o.reference_merges == o.common_prefix_merges
    notes = []
    if same_vocab and same_merges:
        notes.append(Observation(
            "tokenizer", "strong",
            f"Identical tokenizers: all {o.shared_tokens} tokens at the same ids"
            + (f" and all {o.suspect_merges} merges in the same order." if o.suspect_merges else "."),
            "Strong evidence that the suspect reuses the reference's tokenizer (common and often "
            "legitimate); it is not evidence that the weights were copied.",
        ))  # fmt: skip
        return notes
    if o.jaccard >= _STRONG_JACCARD:
        strength, meaning = (
            "strong",
            (
                "Most of the vocabulary is the same: the suspect's tokenizer was taken from or extended from "
                "the reference's. Evidence about the tokenizer, not about the weights."
            ),
        )
    elif o.jaccard >= _WEAK_JACCARD:
        strength, meaning = (
            "weak",
            (
                "Tokenizers trained on similar languages share many common words; a partial overlap hints at, "
                "but does not establish, a common origin. Ids and merge order are the stronger test."
            ),
        )
    else:
        strength, meaning = "none", "Little shared vocabulary: no evidence of a shared tokenizer."
    notes.append(Observation(
        "tokenizer", strength,
        f"{o.shared_tokens} shared token strings: Jaccard {pct} of {o.suspect_vocab_size} and {o.reference_vocab_size} tokens; "
        f"{o.same_id} of them at the same id.",
        meaning,
    ))  # fmt: skip
    if o.suspect_vocab_size == o.reference_vocab_size and o.jaccard < _STRONG_JACCARD:
        notes.append(Observation(
            "tokenizer", "none",
            f"Equal vocabulary sizes ({o.suspect_vocab_size}) with only {pct} of token strings shared.",
            "Vocabulary size is a design choice (32k, 128k, 151k ...), not evidence of a shared tokenizer or weights.",
        ))  # fmt: skip
    if o.same_id_multichar >= _STRONG_SAME_IDS:
        notes.append(Observation(
            "tokenizer", "strong",
            f"{o.same_id_multichar} multi-character tokens sit at the same ids in both vocabularies.",
            "Ids follow training order, so independent tokenizers do not agree on them: one vocabulary was "
            "built from the other. Evidence about the tokenizer, not the weights.",
        ))  # fmt: skip
    if o.suspect_merges and o.reference_merges:
        run = (
            f"longest common run of merges {o.longest_common_run} (first {o.common_prefix_merges} identical)"
        )
        if o.longest_common_run >= _STRONG_MERGE_RUN:
            notes.append(Observation(
                "tokenizer", "strong", f"The {run}.",
                "A long identical run of merges means the merge list was copied or training continued from it; "
                "evidence of a shared tokenizer, not of shared weights.",
            ))  # fmt: skip
        elif o.longest_common_run >= _WEAK_MERGE_RUN:
            notes.append(
                Observation(
                    "tokenizer",
                    "weak",
                    f"The {run}.",
                    "Some shared merge order beyond the universal first merges; suggestive only.",
                )
            )
        elif o.longest_common_run:
            notes.append(Observation(
                "tokenizer", "none", f"The {run}.",
                "Byte-level BPE's first merges are nearly universal ('Ġ t', 'h e', 'i n' ...): no evidence.",
            ))  # fmt: skip
    distinctive = [t for t in o.shared_special_tokens if t not in _GENERIC_SPECIALS]
    if distinctive:
        notes.append(Observation(
            "tokenizer", "weak", f"Shared special tokens: {', '.join(distinctive[:20])}.",
            "Special-token conventions spread between projects (chat templates); suggestive, not evidence of shared weights.",
        ))  # fmt: skip
    return notes
