"""The registry's store: fingerprints of known models, in SQLite (WAL) with content-addressed files beside it.

Fingerprints live as files named by their SHA-256 in ``<registry>.blobs/`` because a fingerprint is
opened as a memory-mapped checkpoint, and a file can be mapped where a BLOB cannot. An add writes the
file first (temporary name, fsync, rename to its hash) and then the rows in one transaction, so a
crash at any point leaves either the whole entry or none of it (at worst a file no entry names,
which ``clean_orphans`` removes). Many processes may add at once: each write is a ``BEGIN
IMMEDIATE`` transaction and waits its turn.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from ..errors import FormatError, NotFoundError, UnsupportedError, UsageError
from .schema import MIGRATIONS, SCHEMA_VERSION, SKETCH_VERSION

_CHUNK = 1 << 20
_TEMP_PREFIX, _TEMP_SUFFIX = ".adding.", ".partial"
_BUSY_TIMEOUT_MS = 60_000
# A temporary file is left from a killed add when no process holds its lock and it is older than
# this: the age covers the instant between creating the file and locking it.
ORPHAN_AGE_S = 60.0


def default_path() -> Path:
    """``$XDG_CACHE_HOME/scratchcheck/registry.sqlite`` (``~/.cache`` when the variable is unset)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "scratchcheck" / "registry.sqlite"


@dataclass(frozen=True)
class Entry:
    """One registered fingerprint and what is known about the model it was made from."""

    name: str
    content_hash: str  # SHA-256 of the fingerprint file
    size: int  # bytes of the fingerprint file
    added: str  # ISO-8601 UTC
    source: str = ""  # path or hub id the fingerprint was made from
    revision: str | None = None
    license: str | None = None
    params: int = 0  # parameters of the model
    source_key: str | None = None  # what the source looked like when indexed (sources.source_key)
    model_hash: str | None = None  # SHA-256 of the weights the fingerprint holds (sources.model_hash)
    parents: list[str] = field(default_factory=list)  # declared parents, by registry name


@dataclass(frozen=True)
class Added:
    """The outcome of one add: the entry now in the registry, and whether this call created it."""

    entry: Entry
    created: bool


class Registry:
    """An open registry. Use as a context manager; every method is one atomic step."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        read_only: bool | None = None,
    ) -> None:
        """Open the registry at ``path`` (default: the user's); ``create=False`` refuses a missing one.

        ``read_only`` (default: when the file or its folder cannot be written, as on a read-only
        mount or a registry another user shares) opens it for lookups and scans only."""
        self.path = Path(path) if path is not None else default_path()
        self.blobs = self.path.with_name(self.path.name + ".blobs")
        if self.path.exists() and not self.path.is_file():
            raise UsageError(self.path, "is not a file; --registry wants the database file's path")
        if not create and not self.path.exists():
            raise NotFoundError(
                self.path,
                "no registry here; build one with `scratchcheck index` or `scratchcheck registry add`",
            )
        self.read_only = _unwritable(self.path) if read_only is None else read_only
        if self.read_only:
            if not self.path.exists():
                raise NotFoundError(self.path, "no registry here to open read-only")
            self._db = self._connect_read_only()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.blobs.mkdir(exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if not self.read_only:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise FormatError(self.path, f"not a scratchcheck registry ({exc})") from None
        except UnsupportedError:
            self._db.close()
            raise

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that writes nothing. In a folder that cannot be written, SQLite could not
        make the WAL index a reader needs, so the file is read as immutable (no locks, no WAL)."""
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        if not os.access(self.path.parent, os.W_OK):
            uri += "&immutable=1"
        try:
            return sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise FormatError(self.path, f"cannot open the registry read-only ({exc})") from None

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # -- schema --------------------------------------------------------------------------------

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UnsupportedError(
                self.path, f"registry schema {version} is newer than this scratchcheck's ({SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise UnsupportedError(
                self.path,
                f"registry schema {version} is older than this scratchcheck's ({SCHEMA_VERSION}) and the "
                "registry is read-only; open it once where it can be written to upgrade it",
            )
        with self._write():
            # Another process may have migrated while this one waited for the lock.
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for target, statements in MIGRATIONS:
                if target > version:
                    for statement in statements:
                        self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    # -- writing -------------------------------------------------------------------------------

    class _Transaction:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _write(self) -> Registry._Transaction:
        self._check_writable()
        return Registry._Transaction(self._db)

    def _check_writable(self) -> None:
        if self.read_only:
            raise UsageError(
                self.path, "the registry is read-only (opened read-only, or it cannot be written here)"
            )

    def add_file(self, fingerprint: str | os.PathLike[str], **meta: object) -> Added:
        """Register the fingerprint file at ``fingerprint`` (copied into the store). See ``add``."""
        path = Path(fingerprint)
        try:
            with path.open("rb") as handle:
                return self.add(iter(lambda: handle.read(_CHUNK), b""), **meta)
        except FileNotFoundError:
            raise NotFoundError(path, "no such fingerprint file") from None

    def add(
        self,
        chunks: Iterable[bytes],
        *,
        name: str,
        source: str = "",
        revision: str | None = None,
        license: str | None = None,
        params: int = 0,
        source_key: str | None = None,
        parents: Iterable[str] = (),
        shapes: Iterable[str] = (),
        sketches: Mapping[str, tuple[str, bytes]] | None = None,
        model_hash: str | None = None,
        added: str | None = None,
    ) -> Added:
        """Register the fingerprint whose bytes are ``chunks`` under ``name``.

        The same content already registered under any name (the same file, or a fingerprint of the
        same weights: ``model_hash``) is not added again: the existing entry comes back with
        ``created=False``. A name already taken by other content is a ``UsageError``. ``added`` keeps
        an entry's original date (bundles); by default it is now. ``sketches``: the screen's, by key
        (``screen.Block.encode``); without them the entry is sketched at the next scan.
        """
        self._check_writable()
        tmp, content_hash, size, lock = self._write_temp(chunks)
        try:
            with self._write() as db:
                existing = self.find(content_hash, model_hash)
                if existing is not None:
                    return Added(existing, created=False)
                taken = self.find_name(name)
                if taken is not None:
                    raise UsageError(
                        self.path,
                        f"the name {name!r} is taken by another fingerprint"
                        f" (sha256 {taken.content_hash[:12]}); choose another name",
                    )
                # The file is renamed into place under the write lock, so a concurrent remove of
                # the same content cannot unlink it between this rename and the commit.
                final = self._blob_path(content_hash)
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
                _fsync_dir(final.parent)
                added = added or _now()
                db.execute(
                    "INSERT INTO entries (name, content_hash, size, added, source, revision, license,"
                    " params, source_key, model_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        content_hash,
                        size,
                        added,
                        source,
                        revision,
                        license,
                        params,
                        source_key,
                        model_hash,
                    ),
                )
                unique_parents = list(dict.fromkeys(parents))
                db.executemany(
                    "INSERT INTO parents (name, parent) VALUES (?, ?)", [(name, p) for p in unique_parents]
                )
                db.executemany(
                    "INSERT OR IGNORE INTO shapes (key, name) VALUES (?, ?)", [(k, name) for k in shapes]
                )
                if sketches is not None:
                    self._store_sketches(name, sketches)
                if source:
                    db.execute("DELETE FROM failures WHERE source = ?", (source,))
        finally:
            tmp.unlink(missing_ok=True)
            os.close(lock)
        entry = Entry(
            name,
            content_hash,
            size,
            added,
            source,
            revision,
            license,
            params,
            source_key,
            model_hash,
            unique_parents,
        )
        return Added(entry, created=True)

    def _write_temp(self, chunks: Iterable[bytes]) -> tuple[Path, str, int, int]:
        """The bytes in a synced temporary file of the blob folder, with their SHA-256 and size, and
        a descriptor holding the file's lock until the add is over (its writer is alive)."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self.blobs)
        lock = os.open(tmp, os.O_RDONLY)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            os.close(lock)
            raise
        return Path(tmp), digest.hexdigest(), size, lock

    def clean_orphans(self) -> list[Path]:
        """Delete what killed adds left in the blob folder: fingerprint files no entry names, and
        temporary files whose writer is gone. Under the write lock, so that no add is between
        renaming its file into place and committing its row; a temporary file is an add still
        writing while its lock is held (or it is younger than ``ORPHAN_AGE_S``)."""
        removed = []
        with self._write() as db:
            named = {h for (h,) in db.execute("SELECT content_hash FROM entries")}
            for blob in self.blobs.glob("*/*.scfp"):
                if blob.stem not in named:
                    blob.unlink(missing_ok=True)
                    removed.append(blob)
            for tmp in self.blobs.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
                if _abandoned(tmp):
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp)
        return removed

    def _store_sketches(self, name: str, sketches: Mapping[str, tuple[str, bytes]]) -> None:
        self._db.execute("DELETE FROM sketches WHERE name = ?", (name,))
        self._db.executemany(
            "INSERT OR REPLACE INTO sketches (key, name, labels, data) VALUES (?, ?, ?, ?)",
            [(key, name, labels, data) for key, (labels, data) in sketches.items()],
        )
        self._db.execute("UPDATE entries SET sketched = ? WHERE name = ?", (SKETCH_VERSION, name))

    def set_sketches(self, name: str, sketches: Mapping[str, tuple[str, bytes]]) -> None:
        """Store the screen's sketches of an entry registered without them."""
        with self._write():
            if self.find_name(name) is not None:
                self._store_sketches(name, sketches)

    def remove(self, name: str) -> Entry:
        """Take ``name`` out of the registry, with its fingerprint file (content is never shared by two entries)."""
        with self._write() as db:
            entry = self.get(name)
            db.execute("DELETE FROM entries WHERE name = ?", (name,))
            self._blob_path(entry.content_hash).unlink(missing_ok=True)
        return entry

    def record_failure(self, source: str, error: str) -> None:
        """Remember that indexing ``source`` failed (kept until it succeeds)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO failures (source, error, at) VALUES (?, ?, ?)"
                " ON CONFLICT(source) DO UPDATE SET error = excluded.error, at = excluded.at",
                (source, error, _now()),
            )

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str) -> Entry:
        entry = self.find_name(name)
        if entry is None:
            raise NotFoundError(self.path, f"no entry named {name!r} in the registry")
        return entry

    def find(self, content_hash: str, model_hash: str | None = None) -> Entry | None:
        """The entry with this fingerprint file, or (when given) a fingerprint of these weights."""
        found = self._entry_where("content_hash = ?", content_hash)
        if found is None and model_hash is not None:
            found = self._entry_where("model_hash = ?", model_hash)
        return found

    def find_name(self, name: str) -> Entry | None:
        return self._entry_where("name = ?", name)

    def entries(self) -> list[Entry]:
        return list(self._entries("1 ORDER BY name"))

    def shapes(self, name: str) -> set[str]:
        """The entry's shape keys (``candidates.shape_keys``)."""
        return {k for (k,) in self._db.execute("SELECT key FROM shapes WHERE name = ?", (name,))}

    def sharing_shapes(self, keys: Iterable[str]) -> list[Entry]:
        """Every entry with at least one of ``keys``: the scan's candidates."""
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (key TEXT PRIMARY KEY)")
        self._db.execute("DELETE FROM wanted")
        self._db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(k,) for k in keys])
        return list(
            self._entries("name IN (SELECT DISTINCT name FROM shapes JOIN wanted USING (key)) ORDER BY name")
        )

    def unsketched(self) -> list[Entry]:
        """Entries without the screen's current sketches (registered before schema 3 or without
        them, or sketched by a scratchcheck that made them differently)."""
        return list(self._entries(f"sketched != {SKETCH_VERSION} ORDER BY name"))

    def sketches_sharing(self, keys: Iterable[str]) -> Iterator[tuple[str, str, str, bytes]]:
        """(name, key, labels, data) of every stored sketch block with one of ``keys``, by key."""
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_sketch (key TEXT PRIMARY KEY)")
        self._db.execute("DELETE FROM wanted_sketch")
        self._db.executemany("INSERT OR IGNORE INTO wanted_sketch VALUES (?)", [(k,) for k in keys])
        yield from self._db.execute(
            "SELECT name, key, labels, data FROM sketches JOIN wanted_sketch USING (key) ORDER BY key"
        )

    def count(self) -> int:
        """How many entries the registry holds."""
        return self._db.execute("SELECT count(*) FROM entries").fetchone()[0]

    def source_keys(self) -> set[str]:
        rows = self._db.execute("SELECT source_key FROM entries WHERE source_key IS NOT NULL")
        return {key for (key,) in rows}

    def failures(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT source, error FROM failures ORDER BY source"))

    def fingerprint_path(self, entry: Entry) -> Path:
        """Where the entry's fingerprint file is (a read-only copy owned by the registry)."""
        return self._blob_path(entry.content_hash)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` or the first problem found."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def _entry_where(self, condition: str, value: str) -> Entry | None:
        return next(self._entries(condition, value), None)

    def _entries(self, condition: str, *args: str) -> Iterator[Entry]:
        rows = self._db.execute(
            "SELECT name, content_hash, size, added, source, revision, license, params, source_key, model_hash"
            f" FROM entries WHERE {condition}",
            args,
        ).fetchall()
        parents: dict[str, list[str]] = {}
        if rows:
            names = [row[0] for row in rows]
            marks = ",".join("?" * len(names)) if len(names) < 900 else None
            query = "SELECT name, parent FROM parents" + (f" WHERE name IN ({marks})" if marks else "")
            for name, parent in self._db.execute(query, names if marks else ()):
                parents.setdefault(name, []).append(parent)
        for row in rows:
            yield Entry(*row, parents=parents.get(row[0], []))

    def _blob_path(self, content_hash: str) -> Path:
        return self.blobs / content_hash[:2] / f"{content_hash}.scfp"


def _unwritable(path: Path) -> bool:
    """An existing registry that this process cannot write: the file, or its folder (where SQLite
    keeps its journal and the blobs are added)."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _abandoned(tmp: Path) -> bool:
    """Whether no live add is writing ``tmp``: old enough, and its lock free."""
    try:
        if time.time() - tmp.stat().st_mtime < ORPHAN_AGE_S:
            return False
        fd = os.open(tmp, os.O_RDONLY)
    except FileNotFoundError:
        return False  # its add finished meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
