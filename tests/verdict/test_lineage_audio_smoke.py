"""The recurrent/conv lineage benchmark runs end to end on a tiny budget (statistics in bench/RESULTS.md)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from scratchcheck import compare

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_audio_lineage_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(_load("lineage", monkeypatch), "THREADS", 1)  # tiny ops: one thread is fastest
    audio = _load("lineage_audio", monkeypatch)
    rows = audio.run(2, steps=8, conv_seeds=2, folder=tmp_path, log=lambda *_: None)

    recurrent, conv = rows["recurrent"], rows["conv"]
    assert sum(r.truth == "derived" for r in recurrent) == 9 and sum(r.truth == "derived" for r in conv) == 4
    for family in (recurrent, conv):
        assert all(r.verdict in ("derived", "identical") for r in family if r.truth == "derived")
        assert not [
            r.case for r in family if r.truth == "independent" and r.verdict in ("derived", "identical")
        ]
        assert all(r.p_lm is not None for r in family if r.truth == "independent")
    assert "| case | truth | verdict |" in audio.markdown(recurrent, audio.summary(recurrent))

    # The STFT basis is bit-identical in every VAD and must be recognised and left out, not compared.
    report = compare(tmp_path / "lstm" / "base0", [tmp_path / "lstm" / "base1"])
    excluded = {name: why for cov in report.coverage for name, why in cov.excluded}
    assert "fixed signal-processing basis" in excluded["stft.forward_basis_buffer"]
    assert "stft.forward_basis_buffer" not in {t.suspect for t in report.tensors}
    # The LSTM is compared gate block by gate block.
    assert sum("gate block" in t.suspect for t in report.tensors) == 4 * 8
