"""Functions of the C library, for what numpy and os do not offer (``memcmp``, ``mincore``).

ctypes drops the GIL around each call, so threads reading and comparing go on side by side.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any


@functools.cache
def libc_function(name: str, restype: Any, *argtypes: Any) -> Any:
    """The C library's ``name`` with this signature, or None where there is no C library to load."""
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn
