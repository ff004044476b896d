"""Batch indexing: a folder of references in, one entry per model; resumable; failures recorded."""

import json
import subprocess
import sys

import pytest

from scratchcheck.io import open_model
from scratchcheck.registry.index import index
from scratchcheck.registry.sources import expand
from scratchcheck.registry.store import Registry


def _content(reg: Registry) -> dict[str, tuple]:
    return {e.name: (e.content_hash, e.params, tuple(sorted(reg.shapes(e.name)))) for e in reg.entries()}


def test_a_folder_of_references_becomes_one_entry_each(zoo, zoo_registry):
    with Registry(zoo_registry) as reg:
        entries = {e.name: e for e in reg.entries()}
        assert sorted(entries) == zoo.names
        assert entries["small-a"].source == str(zoo.refs / "small-a")
        with open_model(zoo.refs / "small-a") as model:
            assert entries["small-a"].params == model.num_params
        assert all(reg.fingerprint_path(e).stat().st_size == e.size for e in entries.values())
        assert reg.integrity_check() == "ok"


def test_rerun_skips_what_is_indexed_and_failures_do_not_stop_the_batch(zoo, zoo_registry, tmp_path):
    path = tmp_path / "r.sqlite"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    sources = [str(zoo.refs / "small-a"), str(tmp_path / "broken"), str(zoo.refs / "tiny-1")]
    with Registry(path) as reg:
        first = index(sources, reg, workers=2)
        assert sorted(first.added) == ["small-a", "tiny-1"]
        assert list(first.failed) == [str(tmp_path / "broken")]
        assert "model.safetensors" in first.failed[str(tmp_path / "broken")]
        assert reg.failures() == first.failed
        listed = subprocess.run(
            [sys.executable, "-m", "scratchcheck", "registry", "list", "--json", "--registry", str(path)],
            capture_output=True,
            text=True,
        )
        assert json.loads(listed.stdout)["failures"] == first.failed
        again = index(sources, reg, workers=2)
        assert sorted(again.skipped) == sorted([sources[0], sources[2]]) and not again.added
        assert list(again.failed) == [str(tmp_path / "broken")]  # failures are retried
        with Registry(zoo_registry) as full:  # same model, same fingerprint, wherever indexed
            assert _content(reg)["small-a"] == _content(full)["small-a"]


def test_the_same_content_under_another_path_is_a_duplicate(zoo, tmp_path):
    import shutil

    shutil.copytree(zoo.refs / "tiny-2", tmp_path / "copy-of-tiny-2")
    with Registry(tmp_path / "r.sqlite") as reg:
        index([str(zoo.refs / "tiny-2")], reg, workers=1)
        summary = index([str(tmp_path / "copy-of-tiny-2")], reg, workers=1)
        assert summary.duplicates == [(str(tmp_path / "copy-of-tiny-2"), "tiny-2")]
        assert [e.name for e in reg.entries()] == ["tiny-2"]


def test_index_and_registry_commands_end_to_end(zoo, tmp_path):
    db = tmp_path / "r.sqlite"
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two references\n{zoo.refs / 'tiny-1'}\n\n{zoo.refs / 'tiny-3'}\n")
    run = [sys.executable, "-m", "scratchcheck"]
    result = subprocess.run(
        [*run, "index", "--from-list", str(listing), "--registry", str(db)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2 added, 0 already indexed")
    added = subprocess.run(
        [
            *run,
            "registry",
            "add",
            str(zoo.refs / "tiny-2"),
            "--name",
            "t2",
            "--license",
            "mit",
            "--parent",
            "tiny-1",
            "--registry",
            str(db),
        ],
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0 and "added t2" in added.stdout, added.stderr
    listed = json.loads(
        subprocess.run(
            [*run, "registry", "list", "--json", "--registry", str(db)], capture_output=True, text=True
        ).stdout
    )
    assert [(e["name"], e["license"], e["parents"]) for e in listed["entries"]] == [
        ("t2", "mit", ["tiny-1"]),
        ("tiny-1", None, []),
        ("tiny-3", None, []),
    ]


@pytest.mark.slow
def test_ray_engine_gives_the_same_registry_as_the_local_pool(zoo, zoo_registry, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with Registry(tmp_path / "ray.sqlite") as reg:
            summary = index(expand([str(zoo.refs)]), reg, engine="ray")
            assert len(summary.added) == len(zoo.names) >= 8 and not summary.failed
            with Registry(zoo_registry) as local:
                assert _content(reg) == _content(local)
    finally:
        ray.shutdown()


def test_a_folder_of_models_expands_to_its_models_only(tmp_path, fingerprints):
    import shutil

    from scratchcheck import synthetic as S

    S.save({"w": S.llama_decoder(1)["model.norm.weight"]}, tmp_path / "refs" / "a")
    shutil.copy(fingerprints["x"], tmp_path / "refs" / "b.scfp")
    (tmp_path / "refs" / "README.md").write_text("the references we trust\n")
    assert expand([str(tmp_path / "refs")]) == [
        str(tmp_path / "refs" / "a"),
        str(tmp_path / "refs" / "b.scfp"),
    ]
    assert expand([str(tmp_path / "refs" / "a")]) == [
        str(tmp_path / "refs" / "a")
    ]  # a model folder is itself
