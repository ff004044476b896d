"""Resource limits every reader enforces, stated once: a file beyond them is refused, never read.

A checkpoint is untrusted input: its header can claim any size, nest anything, compress anything.
These bounds keep parsing time linear in the file and memory bounded by what a real model needs.
``docs/limits.md`` explains each one to users; the checks that apply them live here too.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import FormatError

MIB = 1 << 20

# JSON headers and metadata files: safetensors headers, shard indexes, configs, tokenizers.
MAX_HEADER_BYTES = 100_000_000  # a safetensors header (the reference implementation's limit)
MAX_METADATA_BYTES = 64 * MIB  # a config, tokenizer or shard index file beside the weights
MAX_NESTING = 64  # JSON objects/arrays, GGUF arrays of arrays, containers in a pickle

# Pickles (torch .bin/.pt): the object pickle of a state dict is a few MB even for 1T-parameter MoEs.
MAX_PICKLE_BYTES = 256 * MIB
MAX_PICKLE_ITEMS = 1_000_000  # containers and entries walked while collecting the tensors

# Compressed zip members (torch zips, npz): inflating may multiply the stored size by at most this
# ratio, except for members up to INFLATE_FREE_BYTES (small zero biases compress far better).
MAX_INFLATE_RATIO = 100
INFLATE_FREE_BYTES = 16 * MIB

# Tensors: any shape a header claims is checked with exact integers before arithmetic on it.
MAX_RANK = 32
MAX_TENSOR_BYTES = 1 << 48  # 256 TiB: far beyond any single tensor, far below int64 overflow
MAX_DENSE_BYTES = 1 << 30  # a sparse ONNX tensor densified in memory, or a dequantised copy

# GGUF header: key/value metadata, tensor infos and arrays (tokenizer vocabularies are the largest).
MAX_GGUF_HEADER_BYTES = 512 * MIB


def tensor_bytes(path: Path, name: str, shape: object, itemsize: int) -> int:
    """Bytes of a tensor of ``shape``, after checking the shape is sane; one-line error otherwise."""
    if (
        not isinstance(shape, list | tuple)
        or len(shape) > MAX_RANK
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise FormatError(
            path,
            f"tensor {name!r}: shape {_short(shape)} is not a list of non-negative integers (at most {MAX_RANK})",
        )
    # Zero-size tensors still must not carry dimensions whose product overflows numpy's int64.
    claimed = math.prod(d for d in shape if d) * itemsize
    if claimed > MAX_TENSOR_BYTES:
        raise FormatError(
            path, f"tensor {name!r}: shape {_short(shape)} claims over {MAX_TENSOR_BYTES} bytes"
        )
    return math.prod(shape) * itemsize


def check_inflated(path: Path, member: str, stored: int, inflated: int, limit: int | None = None) -> None:
    """Refuse a compressed member whose inflated size is a decompression bomb or over ``limit``."""
    if limit is not None and inflated > limit:
        raise FormatError(path, f"zip member {member}: {inflated} bytes, over the {limit}-byte limit")
    if inflated > INFLATE_FREE_BYTES and inflated > stored * MAX_INFLATE_RATIO:
        raise FormatError(
            path,
            f"zip member {member}: {stored} bytes inflate to {inflated}, over the "
            f"{MAX_INFLATE_RATIO}x decompression limit",
        )


def _short(value: object) -> str:
    text = repr(value) if isinstance(value, list | tuple | int | str | None) else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."
