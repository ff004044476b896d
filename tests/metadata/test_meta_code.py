"""Code and licence channel: licences by their text, copyright notices, modeling-code similarity."""

from __future__ import annotations

from pathlib import Path

import pytest
from meta_builders import files_of

from scratchcheck.metadata.code import (
    card_licences,
    code_matches,
    code_observations,
    copyright_lines,
    detect_licences,
    read_code,
    scan_code_and_licences,
)
from scratchcheck.metadata.findings import LicenceFinding

APACHE_HEADER = """# Copyright 2025 The Qwen Team and The HuggingFace Inc. team. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
MIT_TEXT = """MIT License

Copyright (c) 2023 Some Lab

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
"""


@pytest.mark.parametrize(
    ("text", "licence", "family"),
    [
        (APACHE_HEADER, "Apache-2.0", None),
        (MIT_TEXT, "MIT", None),
        (
            "META LLAMA 3 COMMUNITY LICENSE AGREEMENT\nMeta Llama 3 Version Release Date: April 18, 2024",
            "Llama 3 Community License",
            "llama",
        ),
        (
            "LLAMA 2 COMMUNITY LICENSE AGREEMENT\nLlama 2 Version Release Date: July 18, 2023",
            "Llama 2 Community License",
            "llama",
        ),
        ("Llama 3.1 Community License Agreement", "Llama 3.1 Community License", "llama"),
        (
            "Tongyi Qianwen LICENSE AGREEMENT\n\nTongyi Qianwen Release Date: August 3, 2023",
            "Qwen License",
            "qwen",
        ),
        (
            "Qwen RESEARCH LICENSE AGREEMENT\n\nQwen RESEARCH LICENSE AGREEMENT Release Date: September 19, 2024",
            "Qwen Research License",
            "qwen",
        ),
        ("Gemma Terms of Use\n\nLast modified: February 21, 2024", "Gemma Terms of Use", "gemma"),
        (
            "Attribution-NonCommercial 4.0 International\n... Creative Commons Attribution-NonCommercial 4.0 International Public License",
            "CC-BY-NC-4.0",
            None,
        ),
        ("licensed under CC-BY-SA-4.0", "CC-BY-SA-4.0", None),
        ("GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007", "GPL-3", None),
        ("GNU LESSER GENERAL PUBLIC LICENSE\n   Version 2.1, February 1999", "LGPL-2.1", None),
        ("DEEPSEEK LICENSE AGREEMENT\nVersion 1.0, 23 October 2023", "DeepSeek License", "deepseek"),
    ],
)
def test_licences_are_recognised_by_their_text(text: str, licence: str, family: str | None) -> None:
    found = detect_licences(text, "LICENSE")
    assert [(f.licence, f.family) for f in found] == [(licence, family)]


def test_spdx_lines_and_model_card_front_matter() -> None:
    found = detect_licences("# SPDX-License-Identifier: Apache-2.0 OR MIT\nimport torch\n", "x.py")
    assert [(f.licence, f.evidence) for f in found] == [
        ("Apache-2.0 OR MIT", "SPDX-License-Identifier: Apache-2.0 OR MIT")
    ]
    card = "---\nlicense: other\nlicense_name: qwen\nlicense_link: https://x\n---\n# Model\n"
    assert [(f.licence, f.family) for f in card_licences(card, "README.md")] == [
        ("other", None),
        ("qwen", "qwen"),
    ]
    assert card_licences("# no front matter\nlicense: mit\n", "README.md") == []


def test_copyright_lines_skip_templates_and_prose() -> None:
    text = (
        APACHE_HEADER
        + "\n   Copyright [yyyy] [name of copyright owner]\nthe above copyright notice\n/* © 2024 NAVER Cloud Corp. */\n"
    )
    assert [(c.line, c.text) for c in copyright_lines(text, "f.py")] == [
        (1, "Copyright 2025 The Qwen Team and The HuggingFace Inc. team. All rights reserved."),
        (8, "© 2024 NAVER Cloud Corp."),
    ]


MODELING = """
import torch
from torch import nn


class VisionRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class VisionMlp(nn.Module):
    def __init__(self, config, bias: bool = False):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.intermediate_size = config.intermediate_size
        self.gate_proj = nn.Linear(self.hidden_size, self.intermediate_size, bias=bias)
        self.up_proj = nn.Linear(self.hidden_size, self.intermediate_size, bias=bias)
        self.down_proj = nn.Linear(self.intermediate_size, self.hidden_size, bias=bias)
        self.act_fn = nn.SiLU()

    def forward(self, hidden_state):
        return self.down_proj(self.act_fn(self.gate_proj(hidden_state)) * self.up_proj(hidden_state))


class PatchMerger(nn.Module):
    def __init__(self, dim: int, context_dim: int, spatial_merge_size: int = 2) -> None:
        super().__init__()
        self.hidden_size = context_dim * (spatial_merge_size**2)
        self.ln_q = VisionRMSNorm(context_dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(self.hidden_size, self.hidden_size),
            nn.GELU(),
            nn.Linear(self.hidden_size, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp(self.ln_q(x).view(-1, self.hidden_size))
        return x
"""
# The same file as a derived model ships it: new header, comments, re-indented, one class renamed.
EDITED = "# Copyright 2025 NAVER Cloud Corp. All rights reserved.\n" + MODELING.replace(
    "class PatchMerger", "# merges 2x2 patches\nclass HCXPatchMerger"
).replace("        return x\n", "        return x  # done\n").replace(
    "keepdim=True)", "keepdim=True)   "
).replace("self.act_fn = nn.SiLU()", "self.act_fn = nn.SiLU()  # swiglu")
UNRELATED = '''
import re


class Normaliser:
    """Lower-cases and strips accents."""

    def __init__(self, lowercase=True):
        self.lowercase = lowercase

    def __call__(self, text):
        if self.lowercase:
            text = text.lower()
        return re.sub(r"\\s+", " ", text).strip()


def split_words(text):
    words = []
    for word in text.split(" "):
        if word:
            words.append(word)
    return words
'''


def test_lightly_edited_copy_is_similar_and_unrelated_code_is_not() -> None:
    original, edited, unrelated = (
        read_code(MODELING, "modeling_qwen.py"),
        read_code(EDITED, "modeling_hcx.py"),
        read_code(UNRELATED, "norm.py"),
    )
    assert edited.classes == ("VisionRMSNorm", "VisionMlp", "HCXPatchMerger")
    (copy,) = code_matches([edited], [unrelated, original])
    assert copy.reference_file == "modeling_qwen.py"
    assert copy.jaccard > 0.8 and copy.containment > 0.8
    assert copy.shared_classes == ("VisionRMSNorm", "VisionMlp")
    (other,) = code_matches([unrelated], [original])
    assert other.jaccard == 0.0 and other.shared_classes == ()


def test_comments_and_whitespace_do_not_count_but_strings_keep_their_hashes() -> None:
    a = read_code('x = "a # b"  # comment\n\n    y = 1\n', "a.py")
    b = read_code('x = "a # b"\ny    =    1  # other\n', "b.py")
    assert a.lines == 2 and a.shingles == frozenset({('x = "a # b"', "y = 1")})
    assert b.shingles == a.shingles  # indentation, inner spacing and comments do not count
    assert read_code("y    =    1", "c.py").shingles == frozenset({("y = 1",)})


def test_code_observations_grade_copies_licences_and_notices() -> None:
    original, edited = read_code(MODELING, "modeling_qwen.py"), read_code(EDITED, "modeling_hcx.py")
    matches = code_matches([edited], [original])
    qwen = LicenceFinding("LICENSE", "Qwen License", "qwen", "Tongyi Qianwen LICENSE AGREEMENT")
    llama = LicenceFinding("LICENSE", "Llama 3 Community License", "llama", "META LLAMA 3 COMMUNITY LICENSE")
    apache = LicenceFinding("a.py", "Apache-2.0", None, "Apache License, Version 2.0")
    notice = copyright_lines(APACHE_HEADER, "modeling_hcx.py")
    notes = code_observations(
        matches,
        [edited],
        [qwen, llama, apache, apache],
        [apache],
        notice,
        copyright_lines(APACHE_HEADER, "m.py"),
        {"qwen25vl": "its model_type"},
    )
    graded = [(n.channel, n.strength) for n in notes]
    assert graded == [
        ("code", "strong"),
        ("code", "weak"),
        ("licence", "strong"),
        ("licence", "weak"),
        ("licence", "none"),
        ("code", "weak"),
    ]
    assert "not evidence about the weights" in notes[0].meaning
    assert notes[0].finding.endswith(
        "its copyright notices ['Copyright 2025 The Qwen Team and The HuggingFace Inc. team. All rights reserved.'] "
        "differ from the reference file's []."
    )
    assert "Qwen License" in notes[2].finding and "llama family" in notes[3].meaning


def test_scan_reads_code_licence_files_and_model_card(tmp_path: Path) -> None:
    (tmp_path / "modeling_x.py").write_text(APACHE_HEADER + MODELING)
    (tmp_path / "LICENSE.txt").write_text(MIT_TEXT)
    (tmp_path / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    (tmp_path / "notes.txt").write_text("Copyright 2020 nobody")  # not a licence or code file
    code, licences, copyrights, problems = scan_code_and_licences(
        files_of(tmp_path) | {"gone.py": tmp_path / "gone.py"}
    )
    assert [c.file for c in code] == ["modeling_x.py"]
    assert [(f.file, f.licence) for f in licences] == [
        ("LICENSE.txt", "MIT"),
        ("README.md", "apache-2.0"),
        ("modeling_x.py", "Apache-2.0"),
    ]
    assert [(c.file, c.line) for c in copyrights] == [("LICENSE.txt", 3), ("modeling_x.py", 1)]
    assert [p.file for p in problems] == ["gone.py"] and problems[0].reason.startswith("cannot read")
