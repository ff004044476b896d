"""Make a fingerprint from a checkpoint: read the kept rows of every weight, hash, summarise.

Each weight stored as plain numbers is read through its file's ``read_ranges`` (sorted, coalesced
byte ranges, counted by the file: local ``pread`` or HTTP range requests); a quantised tensor by its
kept rows (GGUF blocks, int8/FP8 + scales, MXFP4: ``quantised``), dequantised alone; any other
computed tensor is dequantised and sampled in memory, and counted as read whole. Tensors found to be
non-learned (``align.nonlearned``) are stored whole, so that the value checks still recognise them
when the fingerprint is compared.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..io.base import Checkpoint, TensorInfo
from ..io.dtypes import SAFETENSORS_DTYPES, dtype_name
from . import sampling, unitfeatures
from .format import MAX_METADATA_FILE, SCHEMA, Fingerprint, values_sha256
from .fused import split_record, splits
from .quantised import read_kept_quantised, stored_bytes

if TYPE_CHECKING:
    from ..compare import Progress

MAX_WHOLE_NONLEARNED = 1 << 24  # elements: a non-learned tensor up to this size is stored whole
# Non-learned tensors that a sample still shows to be such (by dtype, or by its values alone);
# every other reason names a formula table, recognisable only whole.
SEEN_IN_A_SAMPLE = ("constant", "mask", "integer", "a single value")
HASH_CHUNK = 64 * 1024 * 1024
LARGE_BYTES = 4 * 1024 * 1024  # the read budget is reported over tensors at least this large


def build(
    checkpoint: Checkpoint,
    *,
    plan: sampling.Plan = sampling.DEFAULT_PLAN,
    full_hash: bool = False,
    source: str | None = None,
    scan_values: bool = True,
    progress: Progress | None = None,
    summarise: bool = True,
) -> Fingerprint:
    """The fingerprint of ``checkpoint``. ``scan_values`` looks for non-learned tensors by value
    (reads sketches; off for remote models, where only names count); ``full_hash`` also hashes
    every stored byte (a full read). Without ``summarise`` the kept values' hashes and statistics
    and the metadata files are left out (null, empty): what ``verify`` and a registry read, which
    an in-memory copy compared at once never meets."""
    from ..arch import layout

    model = layout(checkpoint)
    places = _places(model)
    fused = splits(model)
    reasons = _nonlearned(model, scan_values)
    files = {info.name: f for f in checkpoint.files for info in f.infos()}
    featured = unitfeatures.chosen(model, plan)
    records, arrays, units = [], {}, {}
    if progress is not None:
        progress.start(sum(i.nbytes for i in checkpoint.weights()), f"fingerprint {checkpoint.path.name}")
    for info in checkpoint.weights():
        reason = reasons.get(info.name)
        whole = (
            reason is not None
            and not reason.startswith(SEEN_IN_A_SAMPLE)
            and info.numel <= MAX_WHOLE_NONLEARNED
        )
        split = fused.get(info.name)
        positions = None if whole else sampling.sample_positions(info.shape, plan, split)
        block = featured.get(info.name) if positions is not None else None
        # A tensor that keeps unit features is read in whole kept rows, the features' rows among them.
        wanted = positions if block is None else unitfeatures.whole_rows(info.shape, positions)
        values, read, full = read_kept(checkpoint, files.get(info.name), info, wanted, full_hash)
        if block is not None:
            units[info.name], values = unitfeatures.split(values, positions)
        arrays[info.name] = values
        component, roles, layer = places.get(info.name) or (model.component_of(info.name), [], None)
        record: dict[str, Any] = {
            "name": info.name,
            "shape": list(info.shape),
            "dtype": info.dtype,
            "numel": info.numel,
            "stored": "whole" if positions is None else "sampled",
            "sample_shape": list(values.shape),
            "sample_dtype": dtype_name(values.dtype),
            "component": component,
            "roles": roles,
            "layer": layer,
            "learned": reason is None,
            "nonlearned_reason": reason,
            "stats": _stats(values) if summarise else None,
            "sha256": values_sha256(values) if summarise else None,
            "bytes_read": read,
            "bytes": info.nbytes,
        }
        if full is not None:
            record["full_sha256"] = full
        if split is not None and positions is not None:
            record["split"] = split_record(split, len(info.shape), plan)
        if block is not None:
            record["unit_features"] = unitfeatures.record(units[info.name], positions, block)
        records.append(record)
        if progress is not None:
            progress.advance(info.nbytes, info.name)
    metadata, meta_records = _metadata(checkpoint) if summarise else ({}, {})
    header = {
        "schema": SCHEMA,
        "created_by": f"scratchcheck {__version__}",
        "source": source or str(checkpoint.path),
        "format": checkpoint.format,
        "params": checkpoint.num_params,
        "full_hash": full_hash,
        "sampling": plan.to_dict(),
        "reads": _reads(records),
        "components": [
            {"name": c.name, "kind": c.kind, "params": c.params, "tensors": len(c.tensors)}
            for c in model.components
        ],
        "metadata_files": meta_records,
        "tensors": records,
    }
    return Fingerprint(header, arrays, metadata, units)


def _places(model) -> dict[str, tuple[str, list[str], int | None]]:
    """Stored tensor -> (component, canonical roles of its views, layer)."""
    out: dict[str, tuple[str, list[str], int | None]] = {}
    for entry in model.entries:
        for name in entry.view.sources:
            component, roles, layer = out.get(name, (entry.component, [], entry.layer))
            if entry.role not in roles:
                roles = [*roles, entry.role]
            out[name] = (component, roles, layer)
    return out


def _nonlearned(model, scan_values: bool) -> dict[str, str]:
    """Non-learned tensors by name, and with ``scan_values`` by value (``align.nonlearned``) among
    the tensors whose role is not a learned matrix."""
    from ..arch.conventions import load_conventions

    conventions = load_conventions()
    reasons = {
        info.name: reason
        for info in model.checkpoint.weights()
        if (reason := conventions.buffer_reason(info.name)) is not None
    }
    if scan_values:
        from ..align.nonlearned import learned_by_construction, nonlearned
        from ..align.sketch import Sketcher
        from ..arch import ModelLayout

        # Projections are learned by construction (not even a sketch is read for each expert here),
        # and tables too large to keep whole (embeddings) are not formula tables: their constants
        # are still recognised from the sample later.
        skip = learned_by_construction(model)
        skip |= {i.name for i in model.checkpoint.weights() if i.numel > MAX_WHOLE_NONLEARNED}
        subset = _WeightsExcept(model.checkpoint, skip)
        reasons.update(nonlearned(ModelLayout(subset), Sketcher(subset)))  # type: ignore[arg-type]
    return reasons


class _WeightsExcept:
    """A checkpoint whose ``weights()`` leave some tensors out; everything else is the checkpoint's."""

    def __init__(self, checkpoint: Checkpoint, left_out: set[str]) -> None:
        self._checkpoint = checkpoint
        self._left_out = left_out

    def weights(self) -> list[TensorInfo]:
        return [i for i in self._checkpoint.weights() if i.name not in self._left_out]

    def __getattr__(self, name: str):
        return getattr(self._checkpoint, name)


def read_kept(
    checkpoint: Checkpoint, tensor_file, info: TensorInfo, positions, full_hash: bool
) -> tuple[np.ndarray, int, str | None]:
    """(kept values, bytes read for them, sha256 of every stored byte when ``full_hash``)."""
    located = _byte_source(checkpoint, tensor_file, info)
    by_rows = getattr(tensor_file, "read_rows", None)
    if (
        located is None
        and by_rows is not None
        and positions is not None
        and len(positions) > 1
        and not full_hash
    ):
        # Quantised rows (GGUF blocks run along rows): only the kept rows are read and dequantised.
        rows = sampling.kept_rows(info.shape, positions)
        return (
            sampling.kept_from_rows(by_rows(info.name, rows), positions),
            rows.size * tensor_file.row_nbytes(info.name),
            None,
        )
    if located is None and positions is not None and not full_hash:
        # int8/FP8 + scales, MXFP4: the kept rows and the scales they use, read and dequantised alone.
        quantised = read_kept_quantised(checkpoint, info, positions)
        if quantised is not None:
            return (*quantised, None)
    if located is None:  # computed otherwise: dequantised in memory, counted as a whole read
        values = checkpoint.read_values(info.name)
        full = values_sha256(values) if full_hash else None
        kept = sampling.take(values, positions)
        return kept, info.nbytes, full
    reader, offset = located
    values, read = sampling.read_positions(
        reader, offset, info.shape, SAFETENSORS_DTYPES[info.dtype], positions
    )
    full = None
    if full_hash:
        digest = hashlib.sha256()
        for start in range(offset, offset + info.nbytes, HASH_CHUNK):
            [(_, data)] = reader.read_ranges([(start, min(start + HASH_CHUNK, offset + info.nbytes))])
            digest.update(data)
        full = digest.hexdigest()
    return values, read, full


def _byte_source(checkpoint: Checkpoint, tensor_file, info: TensorInfo):
    """(range reader, byte offset) of a tensor stored as plain numbers, else None."""
    if tensor_file is None or not checkpoint.stored_as_is(info.name):
        return None
    return stored_bytes(checkpoint, info.name)


def _stats(values: np.ndarray) -> dict[str, float | None]:
    """Summary of the kept values (float64); None where not finite."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None}
    mean = np.add.reduce(x) / x.size
    centred = x - mean
    out = {
        "mean": mean,
        "std": np.sqrt(np.add.reduce(centred * centred) / x.size),
        "min": np.minimum.reduce(x),
        "max": np.maximum.reduce(x),
    }
    return {k: float(v) if np.isfinite(v) else None for k, v in out.items()}


def _reads(records: list[dict[str, Any]]) -> dict[str, Any]:
    large = [r for r in records if r["stored"] == "sampled" and r["bytes"] >= LARGE_BYTES]
    return {
        "bytes_read": sum(r["bytes_read"] for r in records),
        "bytes_total": sum(r["bytes"] for r in records),
        "max_fraction_large_tensor": max((r["bytes_read"] / r["bytes"] for r in large), default=0.0),
    }


def _metadata(checkpoint: Checkpoint) -> tuple[dict[str, bytes], dict[str, dict[str, Any]]]:
    """Metadata files up to MAX_METADATA_FILE bytes kept whole; every one recorded by size and hash."""
    kept, records = {}, {}
    for name, path in sorted(checkpoint.metadata_files.items()):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        stored = len(data) <= MAX_METADATA_FILE
        records[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "stored": stored}
        if stored:
            kept[name] = data
    return kept, records
