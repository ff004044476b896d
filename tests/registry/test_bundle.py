"""Bundles: export and import round-trip, duplicates by content, conflicts by name, damage refused."""

import io
import json
import tarfile

import pytest

from scratchcheck.errors import FormatError
from scratchcheck.registry.bundle import export_bundle, import_bundle
from scratchcheck.registry.sources import add_source
from scratchcheck.registry.store import Registry


def _registry(path, items):
    reg = Registry(path)
    for name, fp in items:
        add_source(reg, str(fp), name=name, license="apache-2.0", parents=["root"])
    return reg


def test_round_trip_keeps_metadata_and_bytes(tmp_path, fingerprints):
    with _registry(tmp_path / "a.sqlite", [("x", fingerprints["x"]), ("y", fingerprints["y"])]) as src:
        assert export_bundle(src, tmp_path / "b.tar") == 2
        with Registry(tmp_path / "c.sqlite") as dst:
            summary = import_bundle(dst, tmp_path / "b.tar")
            assert summary.added == ["x", "y"] and not summary.duplicates and not summary.conflicts
            for a, b in zip(src.entries(), dst.entries(), strict=True):
                assert (a.name, a.content_hash, a.source, a.license, a.params, a.parents, a.added) == (
                    b.name,
                    b.content_hash,
                    b.source,
                    b.license,
                    b.params,
                    b.parents,
                    b.added,
                )
                assert dst.fingerprint_path(b).read_bytes() == src.fingerprint_path(a).read_bytes()


def test_merge_reports_duplicates_and_conflicts(tmp_path, fingerprints):
    fp = fingerprints
    with _registry(tmp_path / "a.sqlite", [("x", fp["x"]), ("y", fp["y"]), ("z", fp["z"])]) as src:
        export_bundle(src, tmp_path / "b.tar")
    with _registry(tmp_path / "c.sqlite", [("x-copy", fp["x"]), ("y", fp["z"])]) as dst:
        summary = import_bundle(dst, tmp_path / "b.tar")
        assert summary.added == []
        assert summary.duplicates == [("x", "x-copy"), ("z", "y")]
        assert summary.conflicts == ["y"]
        assert [e.name for e in dst.entries()] == ["x-copy", "y"]  # z's content is here as y


def test_export_of_named_entries_only(tmp_path, fingerprints):
    with _registry(tmp_path / "a.sqlite", [("x", fingerprints["x"]), ("y", fingerprints["y"])]) as src:
        assert export_bundle(src, tmp_path / "b.tar", ["y"]) == 1
    with Registry(tmp_path / "c.sqlite") as dst:
        assert import_bundle(dst, tmp_path / "b.tar").added == ["y"]


def test_a_tampered_bundle_adds_nothing(tmp_path, fingerprints):
    with _registry(tmp_path / "a.sqlite", [("x", fingerprints["x"]), ("y", fingerprints["y"])]) as src:
        export_bundle(src, tmp_path / "b.tar")
        y_hash = src.get("y").content_hash
    # rewrite the bundle with y's bytes changed
    with tarfile.open(tmp_path / "b.tar") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        for member, data in members:
            if y_hash in member.name:
                data = data[:-1] + bytes([data[-1] ^ 1])
            tar.addfile(member, io.BytesIO(data))
    with Registry(tmp_path / "c.sqlite") as dst:
        with pytest.raises(FormatError, match="bad.tar: entry 'y': its fingerprint does not match"):
            import_bundle(dst, tmp_path / "bad.tar")
        assert dst.entries() == []


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (b"{not json", "bundle.json is not JSON"),
        (json.dumps({"schema": "other/1", "entries": []}).encode(), "not a scratchcheck.registry-bundle/1"),
        (
            json.dumps({"schema": "scratchcheck.registry-bundle/1", "entries": [{"name": "x"}]}).encode(),
            "entry 0: 'content_hash' is missing",
        ),
    ],
)
def test_a_malformed_index_is_a_one_line_format_error(tmp_path, index, message):
    with tarfile.open(tmp_path / "b.tar", "w") as tar:
        info = tarfile.TarInfo("bundle.json")
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))
    with Registry(tmp_path / "c.sqlite") as dst, pytest.raises(FormatError, match=message):
        import_bundle(dst, tmp_path / "b.tar")


def test_not_a_tar(tmp_path):
    (tmp_path / "b.tar").write_bytes(b"\x00garbage" * 200)
    with (
        Registry(tmp_path / "c.sqlite") as dst,
        pytest.raises(FormatError, match="b.tar: not a registry bundle"),
    ):
        import_bundle(dst, tmp_path / "b.tar")


def test_a_file_that_is_no_fingerprint_is_refused(tmp_path):
    with Registry(tmp_path / "a.sqlite") as src:
        src.add([b"not a fingerprint"], name="junk")
        export_bundle(src, tmp_path / "b.tar")
    with Registry(tmp_path / "c.sqlite") as dst:
        with pytest.raises(FormatError, match="b.tar: entry 'junk': "):
            import_bundle(dst, tmp_path / "b.tar")
        assert dst.entries() == []
