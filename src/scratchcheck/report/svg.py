"""Inline SVG figures for the HTML report: layer-similarity heatmaps and drift profiles.

A heatmap's cells are one small PNG (an 80 x 80 matrix is 6,400 cells: as SVG rectangles that is
hundreds of KB per role, as a PNG a few KB) drawn inside the SVG, scaled without smoothing; the
axes, the inferred layer map and the colour scale are SVG on top. No script, nothing fetched.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from html import escape

from ..results import LayerMatrix
from . import fmt
from .digest import LayerStat

# Diverging scale for correlations: blue (-1), near-white (0), dark red (+1).
_STOPS = [
    (-1.0, (5, 48, 97)),
    (-0.5, (146, 197, 222)),
    (0.0, (247, 247, 247)),
    (0.5, (244, 165, 130)),
    (1.0, (103, 0, 31)),
]
_MISSING = (209, 213, 219)
PLOT = 240  # side of a heatmap's cell area, px


def colour(value: float | None) -> tuple[int, int, int]:
    """RGB of a value on the diverging scale; grey for a cell that was not measured."""
    if value is None or not math.isfinite(value):
        return _MISSING
    v = min(1.0, max(-1.0, value))
    for (lo, c0), (hi, c1) in zip(_STOPS, _STOPS[1:], strict=False):
        if v <= hi:
            t = (v - lo) / (hi - lo)
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))  # type: ignore[return-value]
    return _STOPS[-1][1]


def png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    """A minimal 8-bit RGB PNG (signature, IHDR, one IDAT, IEND)."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _ticks(n: int) -> list[int]:
    """Indices to label on an axis of ``n`` cells: at most ~8, on a 1-2-5 step."""
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000) if n / s <= 8 or s == 1000)
    return list(range(0, n, step))


def heatmap(matrix: LayerMatrix) -> str:
    """The i x j similarity of one role: rows are suspect layers, columns reference layers."""
    rows, cols = len(matrix.values), max((len(r) for r in matrix.values), default=0)
    if rows == 0 or cols == 0:
        return ""
    cell = PLOT / max(rows, cols)
    w, h = cols * cell, rows * cell
    left, top = 44, 8
    pixels = [[colour(row[j] if j < len(row) else None) for j in range(cols)] for row in matrix.values]
    data = base64.b64encode(png(pixels)).decode()
    out = [
        f'<svg class="heatmap" width="{left + w + 10:.0f}" '
        f'height="{top + h + 44:.0f}" role="img" aria-label="{escape(matrix.role)} layer similarity">',
        f'<image x="{left}" y="{top}" width="{w:.2f}" height="{h:.2f}" preserveAspectRatio="none" '
        f'style="image-rendering:pixelated" href="data:image/png;base64,{data}"/>',
        f'<rect x="{left}" y="{top}" width="{w:.2f}" height="{h:.2f}" fill="none" stroke="#9ca3af"/>',
    ]
    s_labels, r_labels = matrix.suspect_layers, matrix.reference_layers
    for i in _ticks(rows):
        y = top + (i + 0.5) * cell
        label = s_labels[i] if i < len(s_labels) else i
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{label}</text>')
    for j in _ticks(cols):
        x = left + (j + 0.5) * cell
        label = r_labels[j] if j < len(r_labels) else j
        out.append(f'<text x="{x:.1f}" y="{top + h + 12:.1f}" text-anchor="middle">{label}</text>')
    out.append(
        f'<text x="{left + w / 2:.1f}" y="{top + h + 28:.1f}" text-anchor="middle">reference layer</text>'
    )
    out.append(
        f'<text transform="translate(12 {top + h / 2:.1f}) rotate(-90)" text-anchor="middle">suspect layer</text>'
    )
    out.append(_layer_map(matrix, left, top, cell))
    out.append("</svg>")
    return "".join(out)


def _layer_map(matrix: LayerMatrix, left: float, top: float, cell: float) -> str:
    """The inferred layer map: a line through the mapped cells, each marked with its value."""
    s_index = {layer: i for i, layer in enumerate(matrix.suspect_layers)}
    r_index = {layer: j for j, layer in enumerate(matrix.reference_layers)}
    points = []
    for pair in matrix.mapping:
        if len(pair) == 2 and pair[0] in s_index and pair[1] in r_index:
            i, j = s_index[pair[0]], r_index[pair[1]]
            value = matrix.values[i][j] if j < len(matrix.values[i]) else None
            points.append((left + (j + 0.5) * cell, top + (i + 0.5) * cell, pair, value))
    if not points:
        return ""
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
    radius = max(1.5, min(cell / 3, 4))
    marks = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}"><title>suspect {p[0]} → reference {p[1]}: '
        f"{fmt.corr(v)}</title></circle>"
        for x, y, p, v in points
    )
    # A white halo under a dark line keeps the map visible on dark (high) and pale (low) cells alike.
    return (
        f'<g class="layer-map" fill="none"><polyline points="{line}" stroke="#fff" stroke-width="3"/>'
        f'<polyline points="{line}" stroke="#111827" stroke-width="1.2" stroke-dasharray="3 2"/>'
        f'<g stroke="#fff" stroke-width="3">{marks}</g><g stroke="#111827" stroke-width="1.2">{marks}</g></g>'
    )


def colour_scale() -> str:
    """The legend shared by every heatmap: -1 .. 0 .. +1, grey for not measured, the map marker."""
    stops = "".join(f'<stop offset="{(v + 1) / 2:.2f}" stop-color="rgb{c}"/>' for v, c in _STOPS)
    return (
        '<svg class="scale" width="520" height="34" role="img" '
        'aria-label="colour scale">'
        f'<defs><linearGradient id="scale-gradient">{stops}</linearGradient></defs>'
        '<rect x="30" y="4" width="200" height="12" fill="url(#scale-gradient)" stroke="#9ca3af"/>'
        '<text x="30" y="30" text-anchor="middle">−1</text><text x="130" y="30" text-anchor="middle">0</text>'
        '<text x="230" y="30" text-anchor="middle">+1</text>'
        f'<rect x="250" y="4" width="12" height="12" fill="rgb{_MISSING}"/>'
        '<text x="267" y="14">not measured</text>'
        '<circle cx="370" cy="10" r="4" fill="none" stroke="#111827" stroke-width="1.2"/>'
        '<text x="379" y="14">inferred layer map</text></svg>'
    )


def _axis_range(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo < 1e-9:
        return lo - 0.5, hi + 0.5
    return lo, hi


def profile(stats: list[LayerStat], metric: str) -> str:
    """A per-layer curve (``metric``: "pearson" with its min-max band, or "rel_l2") as inline SVG."""
    if metric == "pearson":
        points = [(s.layer, s.pearson_median, s.pearson_min, s.pearson_max) for s in stats]
        lo = min(0.0, min(p[2] for p in points))
        y0, y1 = _axis_range(lo, 1.0)
        title = "Pearson by layer (median, min–max)"
    else:
        points = [(s.layer, s.rel_l2_median, None, None) for s in stats if s.rel_l2_median is not None]
        if not points:
            return ""
        y0, y1 = _axis_range(0.0, max(p[1] for p in points) * 1.1)
        title = "relative L2 ‖a−b‖/‖b‖ by layer (median)"
    if not points:
        return ""
    width, height, left, top, bottom = 340, 170, 48, 20, 30
    pw, ph = width - left - 10, height - top - bottom
    x_lo, x_hi = points[0][0], points[-1][0]
    span = max(x_hi - x_lo, 1)

    def x(v: float) -> float:
        return left + (v - x_lo) / span * pw

    def y(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * ph

    out = [
        f'<svg class="profile" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text x="{left}" y="12" class="title">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#d1d5db"/>',
    ]
    for v in (y0, (y0 + y1) / 2, y1):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eef0f3"/>'
            f'<text x="{left - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{v:.3g}</text>'
        )
    if metric == "pearson" and y0 < 0 < y1:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#9ca3af"/>')
    for layer in _ticks(int(span) + 1):
        out.append(
            f'<text x="{x(x_lo + layer):.1f}" y="{top + ph + 13}" text-anchor="middle">{x_lo + layer}</text>'
        )
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 2}" text-anchor="middle">suspect layer</text>')
    if metric == "pearson" and len(points) > 1:
        band = [(x(p[0]), y(p[3])) for p in points] + [(x(p[0]), y(p[2])) for p in reversed(points)]
        out.append(
            '<polygon fill="#fecaca" fill-opacity="0.6" points="'
            + " ".join(f"{a:.1f},{b:.1f}" for a, b in band)
            + '"/>'
        )
    colour_line = "#b91c1c" if metric == "pearson" else "#1d4ed8"
    line = " ".join(f"{x(p[0]):.1f},{y(p[1]):.1f}" for p in points)
    out.append(f'<polyline points="{line}" fill="none" stroke="{colour_line}" stroke-width="1.8"/>')
    if len(points) <= 40:
        out.extend(
            f'<circle cx="{x(p[0]):.1f}" cy="{y(p[1]):.1f}" r="2.2" fill="{colour_line}">'
            f"<title>layer {p[0]}: {fmt.number(p[1])}</title></circle>"
            for p in points
        )
    out.append("</svg>")
    return "".join(out)
