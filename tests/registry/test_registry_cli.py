"""``scratchcheck registry ...`` end to end: list, show, remove, export/import, one-line errors."""

import json
import subprocess
import sys

from scratchcheck.registry.sources import add_source
from scratchcheck.registry.store import Registry


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scratchcheck", *args], capture_output=True, text=True)


def _filled(path, fingerprints):
    with Registry(path) as reg:
        add_source(reg, str(fingerprints["x"]), name="alpha", license="mit")
        add_source(reg, str(fingerprints["y"]), name="beta", parents=["alpha"])


def test_list_show_remove(tmp_path, fingerprints):
    db = tmp_path / "r.sqlite"
    _filled(db, fingerprints)
    listed = run("registry", "list", "--json", "--registry", str(db))
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["schema"] == "scratchcheck.registry-list/1"
    tiny = data["entries"][0]["params"]
    assert tiny > 10_000
    assert [(e["name"], e["params"], e["license"], e["parents"]) for e in data["entries"]] == [
        ("alpha", tiny, "mit", []),
        ("beta", tiny, None, ["alpha"]),
    ]
    table = run("registry", "list", "--registry", str(db)).stdout
    assert "alpha" in table and "mit" in table and "2 entries" in table
    shown = run("registry", "show", "beta", "--registry", str(db)).stdout
    assert "declared parents" in shown and "alpha" in shown and str(fingerprints["y"]) in shown
    assert run("registry", "remove", "alpha", "--registry", str(db)).returncode == 0
    assert [
        e["name"]
        for e in json.loads(run("registry", "list", "--json", "--registry", str(db)).stdout)["entries"]
    ] == ["beta"]


def test_export_then_import_into_another_registry(tmp_path, fingerprints):
    db, other, bundle = tmp_path / "r.sqlite", tmp_path / "o.sqlite", tmp_path / "b.tar"
    _filled(db, fingerprints)
    assert "exported 2 entries" in run("registry", "export", str(bundle), "--registry", str(db)).stdout
    first = run("registry", "import", str(bundle), "--registry", str(other))
    assert first.stdout.startswith("2 added, 0 duplicate content, 0 name conflict(s)"), first.stderr
    again = run("registry", "import", str(bundle), "--registry", str(other))
    assert again.stdout.startswith("0 added, 2 duplicate content")


def test_errors_are_one_line_naming_the_file(tmp_path, fingerprints):
    db = tmp_path / "r.sqlite"
    _filled(db, fingerprints)
    for args, fragment in [
        (("registry", "show", "gamma"), "no entry named 'gamma'"),
        (("registry", "remove", "gamma"), "no entry named 'gamma'"),
        (("registry", "import", str(tmp_path / "missing.tar")), "missing.tar: no such bundle"),
        (("registry", "export", str(tmp_path / "no" / "b.tar")), "no such folder"),
    ]:
        result = run(*args, "--registry", str(db))
        assert result.returncode == 2, result
        assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr, result.stderr
    not_db = tmp_path / "x.sqlite"
    not_db.write_text("hello" * 1000)
    result = run("registry", "list", "--registry", str(not_db))
    assert result.returncode == 2 and "x.sqlite: not a scratchcheck registry" in result.stderr


def test_scan_with_no_candidate_states_no_known_source_for_every_component(tmp_path, fingerprints):
    from scratchcheck import synthetic as S

    db = tmp_path / "r.sqlite"
    _filled(db, fingerprints)  # two models of another architecture: no shape in common
    suspect = S.save(S.llama_decoder(5), tmp_path / "suspect", S.llama_config())
    result = run("scan", str(suspect), "--registry", str(db), "--json", str(tmp_path / "scan.json"))
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "scan.json").read_text())
    assert (data["registry_size"], data["candidates"]) == (2, 0)
    assert {c["component"] for c in data["components"]} == {"embeddings", "language_model", "head"}
    for comp in data["components"]:
        assert (comp["verdict"], comp["compared"], comp["power"]) == ("no_known_source", 0, None)
    assert "no known source among 2 registered model(s)" in " ".join(result.stdout.split())


def test_clean_removes_a_file_no_entry_names(tmp_path, fingerprints):
    db = tmp_path / "r.sqlite"
    _filled(db, fingerprints)
    orphan = db.with_name("r.sqlite.blobs") / "00" / f"{'0' * 64}.scfp"
    orphan.parent.mkdir()
    orphan.write_bytes(fingerprints["z"].read_bytes())
    result = run("registry", "clean", "--registry", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "removed 1 orphaned file(s)" and not orphan.exists()
    assert "2 entries" in run("registry", "list", "--registry", str(db)).stdout


def test_a_registry_that_cannot_be_written_is_listed_and_exported_and_refuses_adds(tmp_path, fingerprints):
    db = tmp_path / "r.sqlite"
    _filled(db, fingerprints)
    before = db.read_bytes()
    # Tests may run as root, who can write anything: the check a user without permission meets is
    # emulated in the child process.
    unwritable = (
        "import os, sys; from scratchcheck.registry import store; "
        "store.os.access = lambda path, mode: mode != os.W_OK; "
        "from scratchcheck.cli import main; main(sys.argv[1:])"
    )

    def run_read_only(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", unwritable, *args], capture_output=True, text=True)

    listed = run_read_only("registry", "list", "--json", "--registry", str(db))
    assert listed.returncode == 0, listed.stderr
    assert [e["name"] for e in json.loads(listed.stdout)["entries"]] == ["alpha", "beta"]
    bundle = tmp_path / "out.scfpb"
    exported = run_read_only("registry", "export", str(bundle), "--registry", str(db))
    assert exported.returncode == 0, exported.stderr
    assert bundle.stat().st_size > 0
    added = run_read_only("registry", "add", str(fingerprints["x"]), "--name", "gamma", "--registry", str(db))
    assert added.returncode != 0 and added.stderr.count("\n") == 1
    assert "read-only" in added.stderr and str(db) in added.stderr
    assert db.read_bytes() == before
