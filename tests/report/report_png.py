"""Decode 8-bit PNGs (what Chromium writes) without Pillow: enough to check a screenshot's pixels."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def read_png(data: bytes) -> np.ndarray:
    """(height, width, channels) uint8 pixels of a non-interlaced 8-bit grey/RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and interlace == 0, "only 8-bit, non-interlaced PNGs"
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), np.uint8)
    prev = np.zeros(width * bpp, np.int32)
    for y in range(height):
        kind, row = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            rec = row
        elif kind == 1:  # Sub: a running sum along the row, per channel
            rec = np.cumsum(row.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            rec = (row + prev) % 256
        else:  # Average / Paeth depend on the reconstructed left neighbour: byte by byte
            rec = _sequential(kind, row.tolist(), prev.tolist(), bpp)
        out[y] = rec
        prev = np.asarray(rec, np.int32)
    return out.reshape(height, width, bpp)


def _sequential(kind: int, row: list[int], up: list[int], bpp: int) -> np.ndarray:
    rec = [0] * len(row)
    for i, x in enumerate(row):
        a = rec[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            rec[i] = (x + (a + b) // 2) & 255
            continue
        c = up[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        rec[i] = (x + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return np.asarray(rec, np.int32)
