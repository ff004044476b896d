"""Where the heavy matrix products run: numpy on the CPU by default, or torch on a chosen device.

Unit features, their similarity matrices and the rotation null's Gram matrices are dense products
that an accelerator does many times faster; everything else (streaming sums, assignment, tests)
stays in numpy. CPU numpy remains the default and the only requirement: torch is imported only when
a device is chosen. Results agree with the CPU path to float32 rounding (``matmul`` takes and
returns float32 numpy arrays either way; tests/evidence/test_backend.py states the tolerance).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from ..errors import UsageError

_DEVICE: ContextVar[Any] = ContextVar("scratchcheck_device", default=None)
_RESIDENT: ContextVar[dict | None] = ContextVar("scratchcheck_resident", default=None)


@contextlib.contextmanager
def use_device(name: str | None) -> Iterator[None]:
    """Run the products inside this block on torch device ``name`` ("cuda", "cuda:1", "cpu");
    None or "numpy" keeps numpy. A device that cannot be used is a one-line ``UsageError``."""
    token = _DEVICE.set(None if name in (None, "numpy") else _torch_device(name))
    try:
        yield
    finally:
        _DEVICE.reset(token)


@contextlib.contextmanager
def resident() -> Iterator[None]:
    """Inside this block, read-only left operands (weights mapped from a file, views of them) stay
    on the device: a weight block multiplied once per null draw is converted and uploaded once, not
    once a draw. Writable arrays (a dequantised copy made afresh each draw) are uploaded each time,
    so that the block holds no more than the weights it reads."""
    token = _RESIDENT.set({} if _DEVICE.get() is not None else None)
    try:
        yield
    finally:
        _RESIDENT.reset(token)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float32, on the chosen device."""
    device = _DEVICE.get()
    if device is None:
        return np.asarray(a, np.float32) @ np.asarray(b, np.float32)
    import torch

    def put(x: np.ndarray) -> Any:
        # torch wants a writable array; a read-only one (a memory map) is copied once here.
        return torch.from_numpy(np.require(x, np.float32, ["C", "W"])).to(device)

    kept = _RESIDENT.get()
    if kept is None or a.flags.writeable:
        left = put(a)
    else:
        key = (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)
        if key not in kept:
            kept[key] = (a, put(a))  # ``a`` held: no other array can take its memory in the block
        left = kept[key][1]
    return (left @ put(b)).cpu().numpy()


def _torch_device(name: str) -> Any:
    try:
        import torch
    except ImportError:
        raise UsageError(
            None, f"--device {name}: torch is not installed (pip install scratchcheck[torch])"
        ) from None
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(None, f"--device {name}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(None, f"--device {name}: torch sees no CUDA device")
    return device
