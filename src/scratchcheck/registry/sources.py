"""One source to one fingerprint: how a checkpoint is named, keyed, fingerprinted and registered.

``fingerprint_source`` is what a batch worker runs; ``add_source`` is ``registry add`` for one model
or ``.scfp`` file. Both go through the fingerprint package (``scratchcheck.fingerprint``), so the
registry holds exactly the files ``scratchcheck fingerprint`` writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NotFoundError, ScratchcheckError
from .candidates import shape_keys
from .screen import sketch_fingerprint
from .store import Added, Registry

FINGERPRINT_SUFFIX = ".scfp"


@dataclass(frozen=True)
class Fingerprinted:
    """What a worker sends back for one source: the fingerprint's bytes, or why there are none."""

    source: str
    data: bytes = b""
    params: int = 0
    shapes: list[str] = field(default_factory=list)  # candidates.shape_keys
    sketches: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # screen.Block.encode by key
    model_hash: str | None = None
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


def fingerprint_bytes(source: str, allow_network: bool = False) -> Fingerprinted:
    """The fingerprint file of ``source`` (a model, or an existing ``.scfp``) and what the registry
    records of it; errors are raised."""
    from ..fingerprint import fingerprint, is_fingerprint

    path = Path(source)
    if is_fingerprint(source):
        if not path.is_file():
            raise NotFoundError(path, "no such fingerprint file")
        return describe(source, path)  # opening it refuses anything that is not a fingerprint
    with tempfile.TemporaryDirectory(prefix="scratchcheck-fingerprint-") as tmp:
        out = Path(tmp) / f"fingerprint{FINGERPRINT_SUFFIX}"
        fingerprint(source, out, allow_network=allow_network)
        return describe(source, out)


def describe(source: str, path: Path) -> Fingerprinted:
    """The fingerprint file at ``path`` as the registry records it (a ``FormatError`` if it is none)."""
    from ..fingerprint import open_fingerprint

    with open_fingerprint(path) as checkpoint:
        return Fingerprinted(
            source,
            path.read_bytes(),
            checkpoint.num_params,
            sorted(shape_keys(checkpoint)),
            {key: block.encode() for key, block in sketch_fingerprint(checkpoint).items()},
            model_hash(checkpoint.fingerprint.header),
        )


def model_hash(header: dict) -> str:
    """SHA-256 of what a fingerprint holds of the weights (every tensor's name, shape, dtype and the
    hash of its kept values), so the same model fingerprinted from two paths is one entry."""
    held = [(t["name"], t["shape"], t["dtype"], t["sha256"]) for t in header["tensors"]]
    return hashlib.sha256(json.dumps(held).encode()).hexdigest()


def fingerprint_source(source: str, allow_network: bool = False) -> Fingerprinted:
    """``fingerprint_bytes`` for a batch worker: every error comes back as text, never raised."""
    try:
        return fingerprint_bytes(source, allow_network)
    except ScratchcheckError as exc:
        return Fingerprinted(source, error=str(exc))
    except Exception as exc:  # a bug or a worker-side surprise: recorded, the batch goes on
        return Fingerprinted(source, error=f"{type(exc).__name__}: {exc}")


def add_source(
    registry: Registry,
    source: str,
    *,
    name: str | None = None,
    license: str | None = None,
    parents: Iterable[str] = (),
    allow_network: bool = False,
) -> Added:
    """Register a model (fingerprinted here) or an existing ``.scfp`` file under ``name``."""
    made = fingerprint_bytes(source, allow_network)
    return registry.add(
        [made.data],
        name=name or default_name(source),
        source=source,
        license=license,
        params=made.params,
        source_key=source_key(source),
        parents=parents,
        shapes=made.shapes,
        sketches=made.sketches,
        model_hash=made.model_hash,
    )


def read_source_list(path: str | os.PathLike[str]) -> list[str]:
    """Sources from a text file: one per line; blank lines and ``#`` comments are ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise NotFoundError(path, "no such list of checkpoints") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def expand(paths: Iterable[str]) -> list[str]:
    """Each path as given, except a folder holding no checkpoint file of its own: the models in it
    (its sub-folders, checkpoint files and fingerprints; other files such as a README are left out)."""
    from ..fingerprint import is_fingerprint

    out = []
    for source in paths:
        path = Path(source)
        if path.is_dir() and not any(_is_checkpoint_file(p) for p in path.iterdir()):
            out.extend(
                str(p)
                for p in sorted(path.iterdir())
                if p.is_dir() or is_fingerprint(p) or _is_checkpoint_file(p)
            )
        else:
            out.append(source)
    return out


def _is_checkpoint_file(path: Path) -> bool:
    from ..io.resolve import detect_format

    if not path.is_file() or path.name.startswith("."):
        return False
    try:
        detect_format(path)
    except ScratchcheckError:
        return False
    return True
