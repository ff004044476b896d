"""Fixtures of the metadata tests; the builders live in ``meta_builders`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from meta_builders import hcx_config, qwen_config, write_json  # noqa: E402


@pytest.fixture
def hcx_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "HyperCLOVAX-SEED-Think-32B"
    write_json(folder / "config.json", hcx_config())
    return folder


@pytest.fixture
def qwen_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "Qwen2.5-VL-32B-Instruct"
    write_json(folder / "config.json", qwen_config())
    return folder
