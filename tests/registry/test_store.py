"""The store: entries whole or absent, duplicates by content, concurrent writers, crashes mid-add."""

import fcntl
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from scratchcheck.errors import FormatError, NotFoundError, UnsupportedError, UsageError
from scratchcheck.registry import store
from scratchcheck.registry.schema import MIGRATIONS, SCHEMA_VERSION
from scratchcheck.registry.store import Registry, default_path


def test_add_show_remove_round_trip(tmp_path):
    with Registry(tmp_path / "reg.sqlite") as reg:
        added = reg.add(
            [b"finger", b"print"],
            name="a",
            source="org/a",
            revision="v1",
            license="mit",
            params=7,
            parents=["p", "p"],
        )
        assert added.created
        entry = reg.get("a")
        assert entry == added.entry
        assert (entry.size, entry.params, entry.license, entry.parents) == (11, 7, "mit", ["p"])
        assert reg.fingerprint_path(entry).read_bytes() == b"fingerprint"
        assert [e.name for e in reg.entries()] == ["a"]
        reg.remove("a")
        assert reg.entries() == []
        assert not reg.fingerprint_path(entry).exists()
        with pytest.raises(NotFoundError, match="no entry named 'a'"):
            reg.get("a")


def test_same_content_is_a_duplicate_and_a_taken_name_an_error(tmp_path):
    with Registry(tmp_path / "reg.sqlite") as reg:
        first = reg.add([b"abc"], name="a")
        again = reg.add([b"abc"], name="b")
        assert not again.created and again.entry.name == "a"
        with pytest.raises(UsageError, match="'a' is taken"):
            reg.add([b"other"], name="a")
        assert [e.name for e in reg.entries()] == ["a"]
        assert sorted(p.name for p in reg.blobs.rglob("*")) == [
            first.entry.content_hash[:2],
            f"{first.entry.content_hash}.scfp",
        ]


def test_wal_schema_version_and_reopening(tmp_path):
    path = tmp_path / "reg.sqlite"
    with Registry(path) as reg:
        reg.add([b"x"], name="x")
        assert reg.schema_version() == SCHEMA_VERSION
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    with Registry(path) as reg:
        assert reg.get("x").size == 1


def test_an_older_registry_is_migrated_when_opened(tmp_path, monkeypatch):
    path = tmp_path / "reg.sqlite"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0][1]:  # a registry made before the scan's shape index existed
        db.execute(statement)
    db.execute("INSERT INTO entries (name, content_hash, size, added) VALUES ('old', 'ab', 1, 'then')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Registry(path) as reg:
        assert reg.schema_version() == SCHEMA_VERSION > 1
        assert reg.get("old").added == "then" and reg.shapes("old") == set()
        reg.add([b"new"], name="new", shapes=["4x8"], sketches={"coord 4x8": ("a/b/0/None", b"\0\0")})
        assert [e.name for e in reg.sharing_shapes(["4x8", "2x2"])] == ["new"]
        # the old entry has no screen sketches yet: the next scan computes them (scan.sketch_missing)
        assert [e.name for e in reg.unsketched()] == ["old"]
        assert list(reg.sketches_sharing(["coord 4x8", "coord 2x2"])) == [
            ("new", "coord 4x8", "a/b/0/None", b"\0\0")
        ]
        # sketches made another way (a newer scratchcheck) are replaced, not mixed
        monkeypatch.setattr(store, "SKETCH_VERSION", store.SKETCH_VERSION + 1)
        assert [e.name for e in reg.unsketched()] == ["new", "old"]
        reg.set_sketches("new", {"coord 2x2": ("a/b/0/None", b"\1\1")})
        assert [e.name for e in reg.unsketched()] == ["old"]
        assert [row[:2] for row in reg.sketches_sharing(["coord 4x8", "coord 2x2"])] == [("new", "coord 2x2")]
        reg.remove("new")
        assert list(reg.sketches_sharing(["coord 2x2"])) == []


def test_a_read_only_registry_is_read_never_written(tmp_path):
    path = tmp_path / "reg.sqlite"
    with Registry(path) as reg:
        reg.add([b"one"], name="one", shapes=["4x8"])
    before = path.read_bytes()
    with Registry(path, read_only=True) as reg:
        assert [e.name for e in reg.sharing_shapes(["4x8"])] == ["one"] and reg.count() == 1
        for write in (
            lambda: reg.add([b"two"], name="two"),
            lambda: reg.remove("one"),
            lambda: reg.record_failure("x", "y"),
            reg.clean_orphans,
        ):
            with pytest.raises(UsageError, match="read-only"):
                write()
    assert path.read_bytes() == before
    with pytest.raises(NotFoundError):
        Registry(tmp_path / "missing.sqlite", read_only=True)
    # An older schema cannot be migrated where it cannot be written: said, not half-done.
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with pytest.raises(UnsupportedError, match="read-only"):
        Registry(path, read_only=True)


def test_a_newer_schema_or_a_non_database_is_refused(tmp_path):
    path = tmp_path / "reg.sqlite"
    Registry(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(UnsupportedError, match="newer than"):
        Registry(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FormatError, match="junk.sqlite: not a scratchcheck registry"):
        Registry(junk)


def test_default_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "scratchcheck" / "registry.sqlite"


def test_failures_are_recorded_and_cleared_by_success(tmp_path):
    with Registry(tmp_path / "reg.sqlite") as reg:
        reg.record_failure("/m/a", "boom")
        reg.record_failure("/m/a", "boom again")
        assert reg.failures() == {"/m/a": "boom again"}
        reg.add([b"ok"], name="a", source="/m/a")
        assert reg.failures() == {}


_WRITER = textwrap.dedent(
    """
    import sys
    from scratchcheck.registry.store import Registry
    path, tag, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with Registry(path) as reg:
        for i in range(count):
            # every writer also adds the same shared content: only one entry may hold it
            reg.add([tag.encode() + i.to_bytes(4, "big") * (size // 4)], name=f"{tag}-{i}", parents=["base"])
            reg.add([b"shared" * 10], name=f"shared-by-{tag}-{i}")
            print(i, flush=True)
    """
)


def _writer(path, tag, count, size=64):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), tag, str(count), str(size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _assert_consistent(reg: Registry) -> None:
    assert reg.integrity_check() == "ok"
    for entry in reg.entries():
        blob = reg.fingerprint_path(entry).read_bytes()
        assert (len(blob), hashlib.sha256(blob).hexdigest()) == (entry.size, entry.content_hash), entry.name
        assert entry.name.startswith("shared") or entry.parents == ["base"], entry.name


def test_two_processes_adding_at_once(tmp_path):
    path = tmp_path / "reg.sqlite"
    writers = [_writer(path, tag, 15) for tag in ("a", "b")]
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    with Registry(path) as reg:
        names = [e.name for e in reg.entries()]
        assert sorted(n for n in names if not n.startswith("shared")) == sorted(
            f"{t}-{i}" for t in "ab" for i in range(15)
        )
        assert sum(n.startswith("shared") for n in names) == 1
        _assert_consistent(reg)


def test_kill_9_in_the_middle_of_adds_leaves_whole_entries_or_none(tmp_path, monkeypatch):
    path = tmp_path / "reg.sqlite"
    for round_ in range(3):
        writer = _writer(path, f"r{round_}", 1000, size=2 << 20)  # 2 MiB each: the kill lands mid-add
        assert writer.stdout.readline()  # at least one add done
        time.sleep(0.05 * (round_ + 1))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        with Registry(path) as reg:
            _assert_consistent(reg)
            assert reg.get(f"r{round_}-0").parents == ["base"]
    with Registry(path) as reg:  # the registry still takes writes
        reg.add([b"after"], name="after", parents=["base"])
        _assert_consistent(reg)
        # what the killed adds left (a file renamed into place before its commit, a temporary
        # file) goes; the writers are dead, so their files' locks are free
        monkeypatch.setattr(store, "ORPHAN_AGE_S", 0.0)
        reg.clean_orphans()
        held = {p.name for p in reg.blobs.rglob("*") if p.is_file()}
        assert held == {f"{e.content_hash}.scfp" for e in reg.entries()}
        _assert_consistent(reg)


def test_cleaning_removes_orphans_but_never_a_live_add_or_an_entry(tmp_path, monkeypatch):
    with Registry(tmp_path / "reg.sqlite") as reg:
        kept = reg.fingerprint_path(reg.add([b"kept"], name="kept").entry)
        orphan = reg.blobs / "ab" / f"ab{'0' * 62}.scfp"  # renamed into place, then the add was killed
        orphan.parent.mkdir()
        orphan.write_bytes(b"orphan")
        dead, live, fresh = (reg.blobs / f".adding.{n}.partial" for n in ("dead", "live", "fresh"))
        for tmp in (dead, live, fresh):
            tmp.write_bytes(b"partial")
        old = time.time() - 2 * store.ORPHAN_AGE_S
        os.utime(dead, (old, old))
        os.utime(live, (old, old))
        holder = os.open(live, os.O_RDONLY)  # an add still writing holds its file's lock
        fcntl.flock(holder, fcntl.LOCK_EX)
        try:
            assert sorted(reg.clean_orphans()) == sorted([orphan, dead])
        finally:
            os.close(holder)
        assert kept.read_bytes() == b"kept" and live.exists() and fresh.exists()
        assert reg.clean_orphans() == [live]  # its writer gone, it goes too
