"""Tokenizer and code/licence rules read the metadata channel: a reference's tokenizer, code or
model-specific licence shipped by the suspect fails them, unless the borrowing is declared."""

import json
from dataclasses import replace

import pytest
from audit_builders import write_policy

from scratchcheck.audit import Outcome, audit, load_policy
from scratchcheck.metadata import compare_metadata

LETTERS = "abcdefghijklmnopqrstuvwxyz"
MERGES = [(a, b) for a in LETTERS[:8] for b in LETTERS[:6]]
VOCAB = {t: i for i, t in enumerate(list(LETTERS) + [a + b for a, b in MERGES])}
CODE = "".join(f"def step_{i}(x):\n    return x * {i} + step_{max(i - 1, 0)}(x - 1)\n\n" for i in range(40))
QWEN_LICENCE = "Tongyi Qianwen LICENSE AGREEMENT\n\nTongyi Qianwen Release Date: August 3, 2023\n"
GATED = """
extends = "strict"
[[rule]]
id = "own-tokenizer"
severity = "fail"
[[rule]]
id = "own-code-and-licence"
severity = "fail"
"""


def _model(folder, vocab, merges, code):
    folder.mkdir()
    model = {"type": "BPE", "vocab": vocab, "merges": [" ".join(m) for m in merges]}
    (folder / "tokenizer.json").write_text(
        json.dumps({"model": model, "pre_tokenizer": {"type": "ByteLevel"}})
    )
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (folder / "modeling_x.py").write_text(code)
    (folder / "LICENSE").write_text(QWEN_LICENCE)
    return folder


@pytest.fixture
def borrowed_tokenizer_and_code(solar, tmp_path):
    """The Solar comparison, with a metadata channel in which the suspect ships the reference's
    tokenizer, modeling code and licence."""
    reference = _model(tmp_path / "qwen-ref", VOCAB, MERGES, CODE)
    suspect = _model(tmp_path / "suspect", VOCAB, MERGES, CODE)
    metadata = {str(reference): compare_metadata(suspect, reference).to_dict()}
    return replace(solar.report, metadata=metadata)


def _rules(result):
    return {r.type: r for r in result.rules}


def test_the_references_tokenizer_code_and_licence_fail_when_the_policy_makes_them_failures(
    borrowed_tokenizer_and_code, tmp_path
):
    result = audit(borrowed_tokenizer_and_code, load_policy(write_policy(tmp_path, GATED)))
    rules = _rules(result)
    assert rules["tokenizer"].outcome == Outcome.FAIL and rules["code_licence"].outcome == Outcome.FAIL
    assert result.outcome == Outcome.FAIL
    assert "not declared" in rules["tokenizer"].evidence[0].note
    assert any("modeling_x.py" in e.subject for e in rules["code_licence"].evidence)
    # As the presets ship them, the same findings are warnings: reported, not deciding.
    preset = audit(borrowed_tokenizer_and_code, load_policy("strict"))
    assert _rules(preset)["tokenizer"].outcome == Outcome.FAIL and preset.outcome == Outcome.PASS


def test_a_declared_tokenizer_and_code_borrowing_passes(borrowed_tokenizer_and_code, tmp_path):
    policy = GATED + '\n[[allow]]\ncomponent = "tokenizer"\nfrom = "qwen*"\n'
    rules = _rules(audit(borrowed_tokenizer_and_code, load_policy(write_policy(tmp_path, policy))))
    assert rules["tokenizer"].outcome == Outcome.PASS and "disclosed" in rules["tokenizer"].evidence[0].note
    assert rules["code_licence"].outcome == Outcome.PASS


def test_an_own_tokenizer_passes(solar, tmp_path):
    reference = _model(tmp_path / "qwen-ref", VOCAB, MERGES, CODE)
    other = {t + "x": i for t, i in VOCAB.items()}
    suspect = _model(tmp_path / "suspect", other, [(a + "x", b + "x") for a, b in MERGES[:3]], "x = 1\n")
    report = replace(solar.report, metadata={str(reference): compare_metadata(suspect, reference).to_dict()})
    tokenizer = _rules(audit(report, load_policy("strict")))["tokenizer"]
    assert tokenizer.outcome == Outcome.PASS and "its own" in tokenizer.evidence[0].note
