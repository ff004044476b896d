"""Resolving what a user typed: files by suffix or magic, folders, Hugging Face ids from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from safetensors.numpy import save_file

from scratchcheck.errors import NotFoundError, UnsupportedError
from scratchcheck.io.resolve import detect_format, open_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache that the hub client reads instead of the user's, offline."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # read at import time
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def add_cached_model(cache: Path, repo_id: str) -> Path:
    """The layout `hf download` leaves: refs/main names a commit, snapshots/<commit>/ holds files."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    save_file({"w": np.arange(4, dtype=np.float32)}, str(snapshot / "model.safetensors"))
    (snapshot / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return snapshot


def test_cached_hub_id_resolves_offline(hub_cache: Path) -> None:
    snapshot = add_cached_model(hub_cache, "org/name")
    checkpoint = open_model("org/name")
    assert checkpoint.path.resolve() == snapshot.resolve()
    np.testing.assert_array_equal(checkpoint.read("w"), np.arange(4, dtype=np.float32))
    assert checkpoint.config() == {"model_type": "llama"}


def test_cached_hub_id_at_a_revision(hub_cache: Path) -> None:
    snapshot = add_cached_model(hub_cache, "org/name")
    assert open_model(f"org/name@{COMMIT}").path.resolve() == snapshot.resolve()


def test_uncached_hub_id_says_how_to_download(hub_cache: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        open_model("org/absent-model")
    message = str(caught.value)
    assert message.startswith("org/absent-model: not in the local Hugging Face cache")
    assert "hf download org/absent-model" in message and "--allow-network" in message
    assert "\n" not in message


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file or folder"):
        open_model(tmp_path / "nothing.safetensors")


def test_format_from_magic_bytes_without_a_suffix(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2)}, tmp_path / "zipped")
    torch.save({"w": torch.ones(2)}, tmp_path / "legacy", _use_new_zipfile_serialization=False)
    (tmp_path / "unknown").write_bytes(b"\x00\x01\x02\x03")
    assert detect_format(tmp_path / "zipped") == "torch"
    assert detect_format(tmp_path / "legacy") == "torch"
    assert open_model(tmp_path / "legacy").read("w").tolist() == [1.0, 1.0]
    with pytest.raises(UnsupportedError, match="unknown checkpoint format"):
        detect_format(tmp_path / "unknown")


def test_folder_prefers_safetensors_and_skips_optimizer_state(tmp_path: Path) -> None:
    torch.save({"exp_avg": torch.ones(2)}, tmp_path / "optimizer.pt")
    torch.save({"w": torch.ones(2)}, tmp_path / "pytorch_model.bin")
    assert [i.name for i in open_model(tmp_path).tensors()] == ["w"]
    save_file({"v": np.zeros(1, np.float32)}, str(tmp_path / "model.safetensors"))
    assert open_model(tmp_path).format == "safetensors"


def test_empty_folder_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="no checkpoint files found"):
        open_model(tmp_path)
