"""JSON from untrusted files, parsed only after its size and nesting are checked against the limits.

``json.loads`` recurses once per nesting level, and the code that walks the result does too; a
header of ten thousand brackets must be a one-line error, not a RecursionError somewhere later.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, NotFoundError
from .limits import MAX_METADATA_BYTES, MAX_NESTING

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_DEPTH_STEP = np.zeros(256, np.int8)
_DEPTH_STEP[list(b"[{")] = 1
_DEPTH_STEP[list(b"]}")] = -1


def nesting_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in JSON text (brackets inside strings do not count)."""
    codes = np.frombuffer(_STRING.sub(b'""', data), np.uint8)
    return int(np.cumsum(_DEPTH_STEP[codes], dtype=np.int64).max(initial=0))


def parse_json(data: bytes, path: Path, what: str = "JSON") -> Any:
    """``data`` parsed, or a FormatError naming ``path``: invalid UTF-8/JSON or nesting too deep."""
    if nesting_depth(data) > MAX_NESTING:
        raise FormatError(path, f"{what} nests deeper than {MAX_NESTING} levels")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise FormatError(path, f"{what} is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"{what} is not valid UTF-8 JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:  # an integer literal beyond Python's digit limit
        raise FormatError(path, f"{what} is not readable JSON ({exc})".splitlines()[0]) from None


def read_json_file(path: Path, what: str = "JSON") -> Any:
    """A JSON file beside the weights (index, config), checked against the metadata size limit."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise NotFoundError(path, f"cannot read: {exc.strerror}") from None
    if len(data) > MAX_METADATA_BYTES:
        raise FormatError(path, f"{what} is larger than the {MAX_METADATA_BYTES}-byte limit")
    return parse_json(data, path, what)
