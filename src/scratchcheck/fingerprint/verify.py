"""Tamper evidence: does a model hold exactly the weights a published fingerprint commits to?

Every tensor of the fingerprint is re-sampled from the model at the same positions and its kept
bytes hashed; with a full-read fingerprint (``--hash``) every stored byte is hashed too. The first
tensor that differs (missing, another shape or dtype, other values) is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..io.base import Checkpoint
from . import sampling, unitfeatures
from .build import read_kept
from .format import Fingerprint, values_sha256
from .fused import split_of


@dataclass(frozen=True)
class Verification:
    """The outcome of ``scratchcheck.verify``: ``ok`` when every check passed."""

    fingerprint: str
    model: str
    tensors_checked: int
    full_hash: bool
    mismatches: list[str] = field(default_factory=list)  # "tensor: what differs", in file order

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def first_mismatch(self) -> str | None:
        return self.mismatches[0] if self.mismatches else None


def verify_checkpoint(
    model: Checkpoint, fp: Fingerprint, fp_name: str, *, stop_at_first: bool = True
) -> Verification:
    """Check ``model`` against ``fp`` tensor by tensor (stops at the first mismatch by default)."""
    plan = sampling.Plan.from_dict(fp.sampling)
    files = {info.name: f for f in model.files for info in f.infos()}
    mismatches: list[str] = []
    checked = 0
    for record in fp.header["tensors"]:
        name = record["name"]
        checked += 1
        problem = None
        if name not in model:
            problem = "missing from the model"
        else:
            info = model.info(name)
            if list(info.shape) != record["shape"] or info.dtype != record["dtype"]:
                problem = f"shape/dtype {list(info.shape)} {info.dtype}, fingerprint has {record['shape']} {record['dtype']}"
            else:
                positions = (
                    None
                    if record["stored"] == "whole"
                    else sampling.sample_positions(info.shape, plan, split_of(record))
                )
                full = fp.header["full_hash"] and "full_sha256" in record
                units = record.get("unit_features") if positions is not None else None
                wanted = positions if units is None else unitfeatures.whole_rows(info.shape, positions)
                values, _, digest = read_kept(model, files.get(name), info, wanted, full)
                if units is not None:
                    features, values = unitfeatures.split(values, positions)
                if values_sha256(values) != record["sha256"]:
                    problem = "sampled values differ"
                elif units is not None and values_sha256(features) != units["sha256"]:
                    problem = "unit features differ"
                elif full and digest != record["full_sha256"]:
                    problem = "stored bytes differ (full hash)"
        if problem:
            mismatches.append(f"{name}: {problem}")
            if stop_at_first:
                break
    if not mismatches:
        recorded = {r["name"] for r in fp.header["tensors"]}
        extra = [info.name for info in model.weights() if info.name not in recorded]
        if extra:
            mismatches.append(f"{extra[0]}: in the model but not in the fingerprint")
    return Verification(fp_name, str(model.path), checked, bool(fp.header["full_hash"]), mismatches)
