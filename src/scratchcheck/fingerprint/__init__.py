"""Fingerprints: a small file that holds enough of a model to run the same tests without its weights.

    fp = scratchcheck.fingerprint("model/", "model.scfp")     # reads ~3% of each large tensor
    scratchcheck.compare("suspect/", ["model.scfp"])          # same tests, on the kept samples
    scratchcheck.verify("released/", "model.scfp").ok         # the weights a lab committed to

``sampling`` chooses the kept positions, ``build`` reads them, ``format`` writes and opens the
``.scfp`` file (a safetensors file with a JSON header, ``docs/fingerprint-schema.md``), ``verify``
checks a model against one.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from ..io.base import Checkpoint
from .build import build
from .format import (
    SCHEMA,
    SUFFIX,
    Fingerprint,
    FingerprintCheckpoint,
    as_checkpoint,
    is_fingerprint,
    open_fingerprint,
    read,
    write,
)
from .sampling import DEFAULT_PLAN, Plan, sample, sample_positions
from .verify import Verification, verify_checkpoint

if TYPE_CHECKING:
    from ..compare import Progress

ModelSource = str | os.PathLike[str] | Checkpoint


def fingerprint(
    model: ModelSource,
    output: str | os.PathLike[str] | None = None,
    *,
    full_hash: bool = False,
    allow_network: bool = False,
    plan: Plan = DEFAULT_PLAN,
    progress: Progress | None = None,
) -> Fingerprint:
    """The fingerprint of ``model`` (a path, Hugging Face id, ``hf://`` or ``https://`` URL, or an
    open checkpoint), written atomically to ``output`` when given."""
    with ExitStack() as stack:
        checkpoint = open_source(model, stack, allow_network=allow_network)
        remote = _is_remote(checkpoint)
        fp = build(
            checkpoint,
            plan=plan,
            full_hash=full_hash,
            source=str(model) if not isinstance(model, Checkpoint) else None,
            scan_values=not remote,
            progress=progress,
        )
        if remote:
            fp.header["reads"]["bytes_fetched"] = checkpoint.bytes_fetched
    if output is not None:
        write(fp, output)
    return fp


def verify(
    model: ModelSource, fingerprint_file: str | os.PathLike[str], *, allow_network: bool = False
) -> Verification:
    """Check ``model`` against the fingerprint file: every hash and kept value, or the first mismatch."""
    fp = read(fingerprint_file)
    with ExitStack() as stack:
        return verify_checkpoint(
            open_source(model, stack, allow_network=allow_network), fp, str(fingerprint_file)
        )


def open_source(source: ModelSource, stack: ExitStack, *, allow_network: bool = False) -> Checkpoint:
    """Any model source as an open checkpoint (closed with ``stack``): a path or id, a URL, a ``.scfp``."""
    if isinstance(source, Checkpoint):
        return source
    from ..io import open_model

    if is_fingerprint(source):
        return stack.enter_context(open_fingerprint(source))
    if "://" in str(source):  # only a URL can be remote: local files skip the HTTP client's import
        from ..io.remote import is_remote, open_remote

        if is_remote(str(source)):
            return stack.enter_context(open_remote(str(source), allow_network=allow_network))
    return stack.enter_context(open_model(source, allow_network=allow_network))


def sampled_copy(checkpoint: Checkpoint, plan: Plan = DEFAULT_PLAN) -> FingerprintCheckpoint:
    """``checkpoint`` fingerprinted in memory, so that it compares with fingerprints position by
    position; its metadata files stay where they are."""
    fp = build(checkpoint, plan=plan, scan_values=not _is_remote(checkpoint), summarise=False)
    return as_checkpoint(fp, Path(checkpoint.path), dict(checkpoint.metadata_files))


def _is_remote(checkpoint: Checkpoint) -> bool:
    """Read over HTTP; never true before ``io.remote`` (and with it the HTTP client) was imported."""
    remote = sys.modules.get("scratchcheck.io.remote")
    return remote is not None and isinstance(checkpoint, remote.RemoteCheckpoint)


__all__ = [
    "DEFAULT_PLAN",
    "SCHEMA",
    "SUFFIX",
    "Fingerprint",
    "FingerprintCheckpoint",
    "Plan",
    "Verification",
    "fingerprint",
    "is_fingerprint",
    "open_fingerprint",
    "open_source",
    "read",
    "sample",
    "sample_positions",
    "sampled_copy",
    "verify",
    "write",
]
