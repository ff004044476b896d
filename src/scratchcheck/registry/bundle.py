"""Portable bundles of registry entries, so a community list of fingerprints can be shared and merged.

A bundle is an uncompressed tar: ``bundle.json`` (schema ``scratchcheck.registry-bundle/1``: every
entry's metadata and content hash) followed by one ``blobs/<sha256>.scfp`` per entry. Import checks
every hash, and that every file is a fingerprint, before adding anything, so a damaged bundle adds
nothing; content already registered
(under any name) is a duplicate, and a name held by other content is a conflict; both are reported
and skipped. Members are read by name, never extracted, so a hostile tar cannot write outside.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import FormatError, NotFoundError, ScratchcheckError, UsageError
from .sources import Fingerprinted, describe
from .store import Entry, Registry

BUNDLE_SCHEMA = "scratchcheck.registry-bundle/1"
_INDEX = "bundle.json"
_CHUNK = 1 << 20
_FIELDS = {"name": str, "content_hash": str, "size": int, "added": str, "source": str, "params": int}


@dataclass(frozen=True)
class ImportSummary:
    added: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (bundle name, registered name)
    conflicts: list[str] = field(default_factory=list)  # names held by other content here


def export_bundle(registry: Registry, path: str | os.PathLike[str], names: list[str] | None = None) -> int:
    """Write the named entries (all by default) to the bundle at ``path``, atomically; returns how many."""
    path = Path(path)
    entries = [registry.get(n) for n in names] if names else registry.entries()
    index = {"schema": BUNDLE_SCHEMA, "entries": [asdict(e) for e in entries]}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with (
            os.fdopen(fd, "wb") as handle,
            tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            data = json.dumps(index, indent=1).encode()
            info = tarfile.TarInfo(_INDEX)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for entry in entries:
                tar.add(
                    registry.fingerprint_path(entry), arcname=_member(entry.content_hash), recursive=False
                )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(entries)


def import_bundle(registry: Registry, path: str | os.PathLike[str]) -> ImportSummary:
    """Add a bundle's entries to ``registry``: every hash is checked first, then each entry is added."""
    path = Path(path)
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115 - the with below owns it once it opened
    except FileNotFoundError:
        raise NotFoundError(path, "no such bundle") from None
    except tarfile.TarError as exc:
        raise FormatError(path, f"not a registry bundle ({exc})") from None
    with tar, tempfile.TemporaryDirectory(prefix="scratchcheck-import-") as tmp:
        entries = _read_index(tar, path)
        staged = [_stage(tar, entry, path, Path(tmp)) for entry in entries]  # a damaged bundle adds nothing
        summary = ImportSummary()
        for entry, (file, made) in zip(entries, staged, strict=True):
            known = registry.find(entry.content_hash, made.model_hash)
            if known is not None:
                summary.duplicates.append((entry.name, known.name))
                continue
            try:
                registry.add_file(
                    file,
                    name=entry.name,
                    source=entry.source,
                    revision=entry.revision,
                    license=entry.license,
                    params=made.params,
                    source_key=entry.source_key,
                    parents=entry.parents,
                    shapes=made.shapes,
                    sketches=made.sketches,
                    model_hash=made.model_hash,
                    added=entry.added,
                )
            except UsageError:
                summary.conflicts.append(entry.name)
                continue
            summary.added.append(entry.name)
    return summary


def _stage(tar: tarfile.TarFile, entry: Entry, path: Path, folder: Path) -> tuple[Path, Fingerprinted]:
    """The entry's file copied out and checked: its hash, and that it opens as a fingerprint."""
    digest = hashlib.sha256()
    staged = folder / f"{entry.content_hash}.scfp"
    with staged.open("wb") as out:
        for chunk in _chunks(tar, entry, path):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != entry.content_hash:
        raise FormatError(path, f"entry {entry.name!r}: its fingerprint does not match its sha256")
    try:
        made = describe(entry.source, staged)
    except ScratchcheckError as exc:
        raise FormatError(path, f"entry {entry.name!r}: {exc.problem}") from None
    return staged, replace(made, data=b"")  # the bytes stay on disk until added


def _read_index(tar: tarfile.TarFile, path: Path) -> list[Entry]:
    try:
        raw = json.loads(_extract(tar, _INDEX, path).read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"{_INDEX} is not JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schema") != BUNDLE_SCHEMA:
        raise FormatError(path, f"not a {BUNDLE_SCHEMA} bundle")
    if not isinstance(raw.get("entries"), list):
        raise FormatError(path, f"{_INDEX} has no list of entries")
    return [_entry(item, i, path) for i, item in enumerate(raw["entries"])]


def _entry(item: Any, i: int, path: Path) -> Entry:
    if not isinstance(item, dict):
        raise FormatError(path, f"entry {i} is not an object")
    for key, kind in _FIELDS.items():
        if not isinstance(item.get(key), kind):
            raise FormatError(path, f"entry {i}: {key!r} is missing or not a {kind.__name__}")
    content_hash = item["content_hash"]
    if len(content_hash) != 64 or any(c not in "0123456789abcdef" for c in content_hash):
        raise FormatError(path, f"entry {i}: content_hash is not a sha256 hex digest")
    parents = item.get("parents", [])
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise FormatError(path, f"entry {i}: parents is not a list of names")
    optional = {k: item.get(k) for k in ("revision", "license", "source_key", "model_hash")}
    if not all(v is None or isinstance(v, str) for v in optional.values()):
        raise FormatError(
            path, f"entry {i}: revision, license, source_key and model_hash must be strings or null"
        )
    return Entry(**{k: item[k] for k in _FIELDS}, **optional, parents=parents)


def _chunks(tar: tarfile.TarFile, entry: Entry, path: Path) -> Iterator[bytes]:
    handle = _extract(tar, _member(entry.content_hash), path)
    while chunk := handle.read(_CHUNK):
        yield chunk


def _extract(tar: tarfile.TarFile, member: str, path: Path) -> io.BufferedReader:
    try:
        handle = tar.extractfile(member)
    except KeyError:
        handle = None
    if handle is None:
        raise FormatError(path, f"the bundle has no file {member}")
    return handle


def _member(content_hash: str) -> str:
    return f"blobs/{content_hash}.scfp"
