"""Result dataclasses: frozen, and ``to_dict()`` gives plain JSON values (lists, dicts, None)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from scratchcheck.metadata.findings import (
    ConfigFact,
    MetadataFindings,
    Observation,
    Problem,
    TokenizerSummary,
)


def _findings() -> MetadataFindings:
    return MetadataFindings(
        name="m",
        files=("config.json",),
        config_facts=(ConfigFact("architectures", "config.json", "$.architectures", ["X"]),),
        tokenizer=TokenizerSummary(("vocab.txt",), "wordpiece", 2, 0, False, ("[CLS]",), ()),
        licences=(),
        copyrights=(),
        code_files=(),
        problems=(Problem("tokenizer.json", "invalid JSON"),),
    )


def test_to_dict_is_plain_json() -> None:
    data = _findings().to_dict()
    assert data == {
        "name": "m",
        "files": ["config.json"],
        "config_facts": [
            {"kind": "architectures", "file": "config.json", "json_path": "$.architectures", "value": ["X"]}
        ],
        "tokenizer": {
            "source": ["vocab.txt"],
            "kind": "wordpiece",
            "vocab_size": 2,
            "num_merges": 0,
            "byte_level": False,
            "special_tokens": ["[CLS]"],
            "first_merges": [],
        },
        "licences": [],
        "copyrights": [],
        "code_files": [],
        "problems": [{"file": "tokenizer.json", "reason": "invalid JSON"}],
    }
    assert json.loads(json.dumps(data)) == data


def test_results_are_frozen() -> None:
    note = Observation("tokenizer", "none", "equal sizes", "no evidence")
    assert note.to_dict()["where"] == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        note.strength = "strong"  # type: ignore[misc]
