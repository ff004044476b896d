"""One party's file cannot change how the other party's file is read: two identical models compared
after a hostile ``.pt`` was opened in the same process are still identical."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

import scratchcheck
from scratchcheck import synthetic as S
from scratchcheck.errors import ScratchcheckError

# BUILD on the FloatStorage stand-in, setting its dtype to int32: it used to load cleanly and make
# every later float32 storage in the process read as int32.
POISON = b"\x80\x02}X\x01\x00\x00\x00wctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x03\x00\x00\x00I32sbs."


def torch_model(folder: Path, weights: dict) -> Path:
    folder.mkdir()
    torch.save(
        {name: torch.from_numpy(array.copy()) for name, array in weights.items()},
        folder / "pytorch_model.bin",
    )
    return folder


def test_identical_models_stay_identical_after_a_hostile_pt(tmp_path: Path) -> None:
    weights = S.llama_decoder(0, hidden=64, heads=4, kv_heads=4, intermediate=128, layers=2)
    a, b = torch_model(tmp_path / "a", weights), torch_model(tmp_path / "b", weights)
    hostile = tmp_path / "hostile.pt"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("archive/data.pkl", POISON)
    with pytest.raises(ScratchcheckError):
        scratchcheck.open_model(hostile)
    report = scratchcheck.compare(str(a), [str(b)])
    assert report.verdict == "identical"
