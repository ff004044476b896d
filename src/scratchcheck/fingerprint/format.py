"""The ``.scfp`` file: a safetensors file whose arrays are the kept samples and whose header says the rest.

Layout (``docs/fingerprint-schema.md``): every stored tensor under its original name holds the kept
sub-tensor in the dtype the model stores (float32 where the model stores it quantised); the unit
features of some down/output projections (``unitfeatures``) are ``__units__/<name>``; metadata
files are zlib-compressed ``U8`` arrays under ``__file__/<name>``; the JSON header validated by
``schema.json`` is the zlib-compressed ``U8`` array ``__header__`` (a 100B MoE has 18K tensor
records: 8 MB of JSON, 3 MB compressed); ``__metadata__`` names the schema version.

Opened, a fingerprint is a ``Checkpoint``: each tensor is listed with its *kept* shape (what reads
return), while its ``numel`` is that of the original tensor, so parameter counts and component
shares are those of the model. Components, roles, alignment, metrics and verdicts then run unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, UnsupportedError
from ..io.base import Checkpoint, TensorFile, TensorInfo
from ..io.safetensors import SafetensorsFile
from ..io.writer import write_safetensors
from .fused import split_fits

SCHEMA = "scratchcheck.fingerprint/1"
HEADER_KEY = "scratchcheck.fingerprint"  # in __metadata__: the schema version
HEADER_TENSOR = "__header__"
FILE_PREFIX = "__file__/"
UNITS_PREFIX = "__units__/"  # + tensor name: every column of a few kept rows (``unitfeatures``)
SUFFIX = ".scfp"
MAX_METADATA_FILE = 8 * 1024 * 1024  # bytes; larger metadata files are recorded by hash only
MAX_HEADER = 1 << 30  # bytes of header JSON a reader inflates at most


def values_sha256(values: np.ndarray) -> str:
    """The sha256 a record keeps of an array: of its values' bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


@dataclass(frozen=True)
class SampledInfo(TensorInfo):
    """A tensor of a fingerprint: ``shape`` is the kept sub-tensor's, ``full_shape`` the model's."""

    full_shape: tuple[int, ...] = ()
    split: tuple[int, tuple[int, ...], bool, tuple[int, ...]] | None = None  # axis, parts, interleaved, kept

    @property
    def numel(self) -> int:
        return int(math.prod(self.full_shape))

    @property
    def model_shape(self) -> tuple[int, ...]:
        return self.full_shape

    def kept_parts(
        self, axis: int, parts: tuple[int, ...], interleaved: bool = False
    ) -> tuple[int, ...] | None:
        """The kept count of each part of a fused tensor sampled part by part (``fused``); None for
        one sampled by its stored shape, whose rows do not fall into the parts."""
        if self.shape == self.full_shape:
            return parts
        if self.split is not None and self.split[:3] == (axis, parts, interleaved):
            return self.split[3]
        return None


@dataclass
class Fingerprint:
    """A fingerprint in memory: the header (``schema.json``) and the kept arrays by tensor name."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    files: dict[str, bytes] = field(default_factory=dict)  # metadata file name -> its bytes
    units: dict[str, np.ndarray] = field(default_factory=dict)  # tensor name -> its unit features

    @property
    def sampling(self) -> dict[str, Any]:
        return self.header["sampling"]

    def tensor(self, name: str) -> dict[str, Any]:
        return next(t for t in self.header["tensors"] if t["name"] == name)


def write(fp: Fingerprint, path: str | Path) -> Path:
    """Write ``fp`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    tensors: dict[str, np.ndarray] = dict(fp.arrays)
    tensors.update((UNITS_PREFIX + name, values) for name, values in fp.units.items())
    for name, data in fp.files.items():
        tensors[FILE_PREFIX + name] = np.frombuffer(zlib.compress(data, 9), dtype=np.uint8)
    return write_safetensors(
        path, tensors, metadata={HEADER_KEY: json.dumps(fp.header, separators=(",", ":"))}
    )


def read(path: str | Path, *, trusted: bool = False) -> Fingerprint:
    """Read and validate a ``.scfp`` file; arrays stay memory-mapped. Errors name the file.

    ``trusted``: the header was validated when the file was stored (a registry's copy, named by its
    SHA-256), so the schema check, the costliest part of opening a small fingerprint, is skipped."""
    path = Path(path)
    st = SafetensorsFile(path)
    raw = st.header_metadata.get(HEADER_KEY)
    if raw is None:
        raise FormatError(
            path, f"not a scratchcheck fingerprint (no {HEADER_KEY!r} in the safetensors header)"
        )
    try:
        header = json.loads(raw)
    except ValueError:
        raise FormatError(path, "the fingerprint header is not valid JSON") from None
    if not trusted:
        validate_header(header, path)
    stored = {info.name: info for info in st.infos()}
    arrays, files, units = {}, {}, {}
    for record in header["tensors"]:
        name = record["name"]
        if name not in stored:
            raise FormatError(path, f"tensor {name!r} is in the header but its values are missing")
        array = st.read(name)
        if list(array.shape) != record["sample_shape"] or stored[name].dtype != record["sample_dtype"]:
            raise FormatError(
                path, f"tensor {name!r}: stored values do not match the header's sample_shape/dtype"
            )
        if not split_fits(record):
            raise FormatError(path, f"tensor {name!r}: its split does not fit its shape and sample_shape")
        arrays[name] = array
        if "unit_features" in record:
            units[name] = _unit_features(st, stored, record, path)
    for name in stored:
        if name.startswith(FILE_PREFIX):
            relative = name[len(FILE_PREFIX) :]
            if relative.startswith("/") or ".." in relative.split("/") or "\\" in relative:
                raise FormatError(path, f"metadata file name {relative!r} is not a safe relative path")
            files[relative] = _inflate(st.read(name).tobytes(), path, f"metadata file {relative!r}")
    return Fingerprint(header, arrays, files, units)


def _unit_features(
    st: SafetensorsFile, stored: dict[str, TensorInfo], record: dict[str, Any], path: Path
) -> np.ndarray:
    """A tensor's unit features (``unitfeatures``), checked against its record."""
    name = record["name"]
    entry = stored.get(UNITS_PREFIX + name)
    expected = [len(record["unit_features"]["rows"]), record["shape"][-1]]
    if entry is None or list(entry.shape) != expected or entry.dtype != record["sample_dtype"]:
        raise FormatError(path, f"tensor {name!r}: its unit features are missing or not {expected}")
    return st.read(entry.name)


def _inflate(data: bytes, path: Path, what: str, limit: int = MAX_METADATA_FILE) -> bytes:
    """zlib-compressed bytes, refusing corrupt data and anything inflating past ``limit``."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise FormatError(path, f"the {what} is corrupt") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise FormatError(path, f"the {what} inflates beyond {limit} bytes")
    return out


def _check_version(schema: object, path: str | Path) -> None:
    if isinstance(schema, str) and schema.startswith("scratchcheck.fingerprint/") and schema != SCHEMA:
        raise UnsupportedError(
            path, f"fingerprint schema {schema!r} is newer than this scratchcheck reads ({SCHEMA})"
        )


@cache
def header_schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))


def validate_header(header: object, path: str | Path) -> None:
    """The header against ``schema.json``: a future version or a malformed header is one line."""
    if not isinstance(header, dict):
        raise FormatError(path, "the fingerprint header is not a JSON object")
    _check_version(header.get("schema"), path)
    from jsonschema.exceptions import best_match

    error = best_match(_header_validator().iter_errors(header))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "header"
        raise FormatError(path, f"fingerprint header: {where}: {error.message}".splitlines()[0][:300])


@cache
def _header_validator() -> Any:
    """The header schema's validator, built once: checking the schema itself costs more than a header."""
    import jsonschema

    schema = header_schema()
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def _split(record: dict[str, Any] | None) -> tuple[int, tuple[int, ...], bool, tuple[int, ...]] | None:
    if record is None:
        return None
    return record["axis"], tuple(record["parts"]), bool(record.get("interleaved")), tuple(record["kept"])


class FingerprintFile(TensorFile):
    """The kept samples of a fingerprint as tensors (``SampledInfo``: kept shape, model's numel)."""

    format = "fingerprint"

    def __init__(self, fp: Fingerprint, path: Path) -> None:
        self.path = path
        self.fp = fp
        self._infos = [
            SampledInfo(
                t["name"],
                tuple(t["sample_shape"]),
                t["sample_dtype"],
                fp.arrays[t["name"]].nbytes,
                path,
                full_shape=tuple(t["shape"]),
                split=_split(t.get("split")),
            )
            for t in fp.header["tensors"]
        ]

    def infos(self) -> list[TensorInfo]:
        return list(self._infos)

    def read(self, name: str) -> np.ndarray:
        return self.fp.arrays[name]


@dataclass
class FingerprintCheckpoint(Checkpoint):
    """A fingerprint opened as a checkpoint; metadata files are unpacked into a folder removed on close."""

    fingerprint: Fingerprint | None = None
    workdir: Path | None = None

    @property
    def sampling(self) -> dict[str, Any]:
        assert self.fingerprint is not None
        return self.fingerprint.sampling

    def unit_features(self, name: str) -> tuple[tuple[int, ...], int, np.ndarray] | None:
        """(residual rows, columns per unit, ``[rows, columns]`` values) of a stored tensor's unit
        features (``unitfeatures``), or None where the fingerprint holds none."""
        assert self.fingerprint is not None
        values = self.fingerprint.units.get(name)
        if values is None:
            return None
        record = self.fingerprint.tensor(name)["unit_features"]
        return tuple(record["rows"]), int(record["block"]), values

    def close(self) -> None:
        super().close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def as_checkpoint(
    fp: Fingerprint, path: str | Path, metadata_files: dict[str, Path] | None = None
) -> FingerprintCheckpoint:
    """``fp`` as a ``Checkpoint``; its metadata files are unpacked unless ``metadata_files`` are given."""
    path = Path(path)
    workdir = None
    if metadata_files is None:
        metadata_files = {}
        if fp.files:
            workdir = Path(tempfile.mkdtemp(prefix="scratchcheck-fp-"))
            for name, data in fp.files.items():
                target = workdir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                metadata_files[name] = target
    return FingerprintCheckpoint(
        path, "fingerprint", [FingerprintFile(fp, path)], metadata_files, fingerprint=fp, workdir=workdir
    )


def open_fingerprint(path: str | Path, *, trusted: bool = False) -> FingerprintCheckpoint:
    """Open a ``.scfp`` file as a checkpoint (``trusted``: see ``read``)."""
    return as_checkpoint(read(path, trusted=trusted), path)


def is_fingerprint(source: object) -> bool:
    """Whether ``source`` names a fingerprint file (by suffix)."""
    return isinstance(source, (str, Path)) and str(source).endswith(SUFFIX)
