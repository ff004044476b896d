"""One source to one fingerprint: how a checkpoint is named, keyed, fingerprinted and registered.

``fingerprint_source`` is what a batch worker runs; ``add_source`` is ``registry add`` for one model
or ``.scfp`` file. Both go through the fingerprint package (``scratchcheck.fingerprint``), so the
registry holds exactly the files ``scratchcheck fingerprint`` writes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFoundError, ScratchcheckError
from .store import Added, Registry

FINGERPRINT_SUFFIX = ".scfp"


@dataclass(frozen=True)
class Fingerprinted:
    """What a worker sends back for one source: the fingerprint's bytes, or why there are none."""

    source: str
    data: bytes = b""
    params: int = 0
    error: str | None = None


def source_key(source: str) -> str:
    """What ``source`` looks like now: its resolved path and every file's name, size and mtime.

    A hub id that is not a local path keys on its text (``org/name@revision``).
    """
    path = Path(source)
    if not path.exists():
        return "id:" + source
    path = path.resolve()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256(str(path).encode())
    for f in files:
        stat = f.stat()
        digest.update(f"\0{f.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return "stat:" + digest.hexdigest()


def default_name(source: str) -> str:
    """A registry name for ``source``: its folder or file name (``org/name`` for a hub id)."""
    path = Path(source)
    if path.exists():
        path = path.resolve()
        return path.stem if path.is_file() else path.name
    return source


def fingerprint_bytes(source: str) -> tuple[bytes, int]:
    """The fingerprint file of ``source`` (a model, or an existing ``.scfp``) and the model's parameters."""
    from ..fingerprint import fingerprint, read_fingerprint

    path = Path(source)
    if source.endswith(FINGERPRINT_SUFFIX):
        if not path.is_file():
            raise NotFoundError(path, "no such fingerprint file")
        with read_fingerprint(path) as checkpoint:  # refuses anything that is not a fingerprint
            return path.read_bytes(), checkpoint.num_params
    with tempfile.TemporaryDirectory(prefix="scratchcheck-fingerprint-") as tmp:
        out = Path(tmp) / f"fingerprint{FINGERPRINT_SUFFIX}"
        fingerprint(source, out)
        with read_fingerprint(out) as checkpoint:
            return out.read_bytes(), checkpoint.num_params


def fingerprint_source(source: str) -> Fingerprinted:
    """``fingerprint_bytes`` for a batch worker: every error comes back as text, never raised."""
    try:
        data, params = fingerprint_bytes(source)
    except ScratchcheckError as exc:
        return Fingerprinted(source, error=str(exc))
    except Exception as exc:  # a bug or a worker-side surprise: recorded, the batch goes on
        return Fingerprinted(source, error=f"{type(exc).__name__}: {exc}")
    return Fingerprinted(source, data, params)


def add_source(
    registry: Registry,
    source: str,
    *,
    name: str | None = None,
    license: str | None = None,
    parents: Iterable[str] = (),
) -> Added:
    """Register a model (fingerprinted here) or an existing ``.scfp`` file under ``name``."""
    data, params = fingerprint_bytes(source)
    return registry.add(
        [data],
        name=name or default_name(source),
        source=source,
        license=license,
        params=params,
        source_key=source_key(source),
        parents=parents,
    )


def read_source_list(path: str | os.PathLike[str]) -> list[str]:
    """Sources from a text file: one per line; blank lines and ``#`` comments are ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise NotFoundError(path, "no such list of checkpoints") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def expand(paths: Iterable[str]) -> list[str]:
    """Each path as given, except a folder holding no weights of its own: its sub-folders and files."""
    from ..io.resolve import detect_format

    out = []
    for source in paths:
        path = Path(source)
        if path.is_dir() and not _has_weights(path, detect_format):
            out.extend(str(p) for p in sorted(path.iterdir()) if not p.name.startswith("."))
        else:
            out.append(source)
    return out


def _has_weights(folder: Path, detect_format) -> bool:
    for p in folder.iterdir():
        if not p.is_file():
            continue
        try:
            detect_format(p)
        except ScratchcheckError:
            continue
        return True
    return False
