"""The .scfp file: what it holds, how it opens, and one-line errors for files that are not right."""

import json
import struct
import zlib

import numpy as np
import pytest
from fp_models import PLAN

from scratchcheck import open_model
from scratchcheck.errors import FormatError, UnsupportedError
from scratchcheck.fingerprint import fingerprint, open_fingerprint, read, write
from scratchcheck.fingerprint.format import header_schema
from scratchcheck.fingerprint.sampling import sample_positions
from scratchcheck.io.writer import write_safetensors


@pytest.fixture(scope="module")
def fp_file(models, tmp_path_factory):
    path = tmp_path_factory.mktemp("fp") / "base.scfp"
    fingerprint(models["base"], path, plan=PLAN)
    return path


def test_fingerprint_keeps_the_values_at_the_hashed_positions_and_the_models_counts(models, fp_file):
    jsonschema = pytest.importorskip("jsonschema")
    fp = read(fp_file)
    jsonschema.validate(fp.header, header_schema())
    assert fp.header["schema"] == "scratchcheck.fingerprint/1"
    with open_model(models["base"]) as model, open_fingerprint(fp_file) as opened:
        assert opened.num_params == model.num_params == fp.header["params"]
        name = "model.layers.1.mlp.up_proj.weight"
        positions = sample_positions(model.info(name).shape, PLAN)
        assert np.array_equal(opened.read(name), np.asarray(model.read(name))[np.ix_(*positions)])
        record = fp.tensor(name)
        assert record["stored"] == "sampled" and record["roles"] == ["mlp.up.weight"] and record["layer"] == 1
        assert fp.tensor("model.norm.weight")["stored"] == "whole"


def test_reads_are_counted_and_stay_within_the_budget(fp_file):
    fp = read(fp_file)
    reads = fp.header["reads"]
    assert 0 < reads["bytes_read"] < reads["bytes_total"]
    # A sampled tensor with more rows than the short-axis limit is read at most ~1/32.
    sampled = [
        t for t in fp.header["tensors"] if t["stored"] == "sampled" and t["shape"][0] > PLAN.short_axis
    ]
    assert sampled and all(0 < t["bytes_read"] <= 0.05 * t["bytes"] for t in sampled)


def test_a_fingerprint_is_much_smaller_than_its_model(models, fp_file):
    assert fp_file.stat().st_size < (models["base"] / "model.safetensors").stat().st_size / 5


def _rewrite_header(src, dst, change):
    fp = read(src)
    fp.header = change(json.loads(json.dumps(fp.header)))
    return write(fp, dst)


def test_a_future_version_is_a_one_line_error_naming_the_file(fp_file, tmp_path):
    bad = _rewrite_header(
        fp_file, tmp_path / "future.scfp", lambda h: {**h, "schema": "scratchcheck.fingerprint/2"}
    )
    with pytest.raises(UnsupportedError, match=r"future\.scfp: fingerprint schema .*/2.* newer"):
        read(bad)


def test_a_header_that_lies_about_a_sample_is_an_error(fp_file, tmp_path):
    def lie(h):
        h["tensors"][0]["sample_shape"] = [1, 1]
        return h

    with pytest.raises(FormatError, match=r"lie\.scfp: tensor .* sample_shape"):
        read(_rewrite_header(fp_file, tmp_path / "lie.scfp", lie))


def test_a_malformed_header_names_the_field(fp_file, tmp_path):
    def drop(h):
        del h["tensors"][2]["sha256"]
        return h

    with pytest.raises(
        FormatError, match=r"bad\.scfp: fingerprint header: tensors/2: 'sha256' is a required"
    ):
        read(_rewrite_header(fp_file, tmp_path / "bad.scfp", drop))


def test_truncated_and_foreign_files_are_one_line_errors(models, fp_file, tmp_path):
    cut = tmp_path / "cut.scfp"
    cut.write_bytes(fp_file.read_bytes()[:-100])
    with pytest.raises(FormatError, match=r"cut\.scfp: truncated"):
        read(cut)
    plain = tmp_path / "plain.scfp"
    plain.write_bytes((models["base"] / "model.safetensors").read_bytes())
    with pytest.raises(FormatError, match=r"plain\.scfp: not a scratchcheck fingerprint"):
        read(plain)
    bomb = read(fp_file)
    header = np.frombuffer(zlib.compress(b" " * (1 << 20)), np.uint8)
    arrays = {"__header__": header, **bomb.arrays}
    write_safetensors(
        tmp_path / "bomb.scfp", arrays, metadata={"scratchcheck.fingerprint": "scratchcheck.fingerprint/1"}
    )
    with pytest.raises(
        FormatError,
        match=r"bomb\.scfp: the fingerprint header is not a JSON object|bomb\.scfp: .*not valid JSON",
    ):
        read(tmp_path / "bomb.scfp")
    garbage = tmp_path / "garbage.scfp"
    garbage.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    with pytest.raises(FormatError, match=r"garbage\.scfp: header is not valid UTF-8 JSON"):
        read(garbage)


def test_metadata_files_travel_inside_and_unsafe_names_are_refused(models, tmp_path):
    folder = models["base"]
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_attention_heads": 8}))
    path = tmp_path / "with-config.scfp"
    try:
        fingerprint(folder, path, plan=PLAN)
    finally:
        (folder / "config.json").unlink()
    with open_fingerprint(path) as opened:
        assert opened.config() == {"model_type": "llama", "num_attention_heads": 8}
        workdir = opened.workdir
    assert not workdir.exists()  # unpacked metadata goes away on close
    fp = read(path)
    fp.files["../escape.json"] = b"{}"
    evil = write(fp, tmp_path / "evil.scfp")
    with pytest.raises(
        FormatError, match=r"evil\.scfp: metadata file name '\.\./escape\.json' is not a safe"
    ):
        read(evil)
