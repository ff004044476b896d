"""The fingerprint and verify commands: files written, exit codes, one-line errors."""

import pytest
from fp_models import decoder

from scratchcheck import synthetic
from scratchcheck.cli import main


def _run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def test_fingerprint_then_verify_then_compare(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = synthetic.save(decoder(3), tmp_path / "model")
    code, out, _ = _run(["fingerprint", str(folder)], capsys)
    assert code == 0 and out.startswith("written: model.scfp (") and "at most" in out
    assert (tmp_path / "model.scfp").is_file()
    code, out, _ = _run(["verify", str(folder), "model.scfp"], capsys)
    assert code == 0 and out.startswith("verified: ")
    code, out, _ = _run(["compare", "model.scfp", str(folder), "--json", "r.json"], capsys)
    assert code == 0 and "identical" in out and "compared on fingerprints" in out


def test_verify_mismatch_exits_1_naming_the_tensor(tmp_path, capsys):
    w = decoder(3)
    synthetic.save(w, tmp_path / "a")
    _run(["fingerprint", str(tmp_path / "a"), "-o", str(tmp_path / "a.scfp")], capsys)
    w["model.norm.weight"] = w["model.norm.weight"] + 1
    synthetic.save(w, tmp_path / "b")
    code, _, err = _run(["verify", str(tmp_path / "b"), str(tmp_path / "a.scfp")], capsys)
    assert code == 1 and err.strip() == "mismatch: model.norm.weight: sampled values differ"


def test_a_corrupt_fingerprint_is_a_one_line_error_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.scfp"
    bad.write_bytes(b"\x01\x00")
    code, _, err = _run(["compare", str(bad), str(bad)], capsys)
    assert code == 2 and err.count("\n") == 1 and "bad.scfp: truncated" in err
    code, _, err = _run(
        ["fingerprint", "https://127.0.0.1:9/model.safetensors", "-o", str(tmp_path / "x.scfp")], capsys
    )
    assert code == 2 and "--allow-network" in err and not (tmp_path / "x.scfp").exists()
