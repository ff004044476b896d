"""An unexpected exception (a bug) met while reading a file still ends in one line that names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scratchcheck import synthetic as S
from scratchcheck.cli import EXIT_INTERNAL, main
from scratchcheck.io.safetensors import SafetensorsFile


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    return int(exited.value.code), capsys.readouterr().err


def boom(*_: object) -> None:
    raise ZeroDivisionError("division by zero\nin a reader")


@pytest.mark.parametrize("where", ["_parse_header", "read"])
def test_internal_error_names_the_file_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    S.save({"w": np.ones((8, 8), np.float32)}, tmp_path)
    path = tmp_path / "model.safetensors"
    if where == "_parse_header":
        monkeypatch.setattr(SafetensorsFile, "_parse_header", boom)
    else:
        monkeypatch.setattr(SafetensorsFile, "read", boom)
    code, err = run_main(["compare", str(path), str(path)], capsys)
    assert code == EXIT_INTERNAL
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"scratchcheck: internal error while reading {path}: ZeroDivisionError:")
