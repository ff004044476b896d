"""Tensors computed from a formula, recognised by their values in any layout, dtype or name.

Two unrelated models with the same front end or configuration store these bit-identical: windowed
DFT/STFT bases (often as a conv weight ``[bins, 1, window]``), sinusoidal position tables, mel and
other triangular filterbanks, analysis windows (Hann, Hamming, Blackman), RoPE frequency ladders and
ALiBi slopes (geometric sequences), position-id ranges, masks. Each check takes the values as an
array and returns the reason they are not learned, or None. Tolerances admit an 8-bit quantised copy
(2% of the table's range) but not a learned tensor, whose residual is of the order of its own size.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

_DSP_HINT = re.compile(r"stft|dft|fft|basis|filter|window|mel|fbank", re.IGNORECASE)
# Residual allowed: 5% of a column's amplitude, at least 2% of the table's.
TOLERANCE, FLOOR = 5e-2, 2e-2
ENVELOPE = 0.25  # a window is divided out only where it is at least this share of its peak


def reason(values: np.ndarray, name: str = "") -> str | None:
    """Why ``values`` is a fixed table (not learned), or None."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 4 or not np.all(np.isfinite(x) | np.isneginf(x)):
        return None
    flat = x.reshape(-1)
    finite = flat[np.isfinite(flat)]
    if (
        finite.size
        and np.ptp(finite) <= 1e-6 * max(abs(float(finite[0])), 1e-30)
        and finite.size == flat.size
    ):
        return f"constant tensor (every value {float(finite[0]):g}): an untouched initialisation"
    if _mask(flat):
        return "mask buffer (two values, one of them 0): not a learned weight"
    if not np.all(np.isfinite(flat)):
        return None
    squeezed = x.reshape([d for d in x.shape if d > 1]) if x.ndim > 1 else x
    if squeezed.ndim == 1:
        return _vector(squeezed)
    matrix = squeezed.reshape(squeezed.shape[0], -1)
    dsp = bool(_DSP_HINT.search(name)) or x.ndim > 2  # a conv layout: a filter bank, not positions
    for table in (matrix, matrix.T):
        if sinusoidal(table):
            if dsp:
                return "fixed signal-processing basis (DFT/STFT filters): computed, not learned"
            return "sinusoidal position table: computed from a formula, not learned"
    for rows in (matrix, matrix.T):
        if windowed_sinusoids(rows):
            return "fixed signal-processing basis (windowed DFT/STFT filters): computed, not learned"
        if filterbank(rows):
            return "fixed filterbank (triangular filters, e.g. mel): computed, not learned"
    return None


def _mask(flat: np.ndarray) -> bool:
    """Values in {0, c} for one constant c (0/1 masks, additive -inf or large negative masks)."""
    values = np.unique(flat[: min(flat.size, 1 << 20)])
    return values.size == 2 and 0.0 in values and bool(np.all(np.isin(flat, values)))


def _vector(v: np.ndarray) -> str | None:
    if v.size < 4:
        return None
    steps = np.diff(v)
    if np.allclose(steps, 1.0) and float(v[0]) == round(float(v[0])):
        return "position-id range (0, 1, 2, ...): computed, not learned"
    if np.all(v > 0):
        ratios = v[1:] / v[:-1]
        if np.allclose(ratios, ratios[0], rtol=1e-3) and ratios[0] < 1.0:
            return "RoPE inverse frequencies or ALiBi slopes (a geometric ladder): computed from the config, not learned"
    if window(v):
        return "analysis window (Hann, Hamming, Blackman family): computed, not learned"
    return None


def window(v: np.ndarray) -> bool:
    """A generalised cosine window ``a0 - a1 cos(2 pi t / N) + a2 cos(4 pi t / N)`` (periodic or
    symmetric): a least-squares fit of the three coefficients leaves no residual."""
    n = v.size
    if n < 16 or np.min(v) < -1e-6 or np.ptp(v) <= 0:
        return False
    for period in (n, n - 1):
        basis, solve = _cosine_basis(n, period)
        coef = solve @ v
        if np.max(np.abs(basis @ coef - v)) <= FLOOR * np.ptp(v) and abs(coef[1]) > 0.1 * abs(coef[0]):
            return True
    return False


@lru_cache(maxsize=64)
def _cosine_basis(n: int, period: int) -> tuple[np.ndarray, np.ndarray]:
    """The three cosines of ``window`` at ``n`` samples and their least-squares solver (the
    pseudo-inverse): made once per length, where a model has one norm vector per layer."""
    t = np.arange(n)
    basis = np.stack([np.ones(n), np.cos(2 * np.pi * t / period), np.cos(4 * np.pi * t / period)], axis=1)
    return basis, np.linalg.pinv(basis)


def sinusoidal(x: np.ndarray) -> bool:
    """Every column of ``x`` is a sampled sinusoid (of its own frequency and phase).

    A sinusoid obeys ``x[t+1] + x[t-1] = 2 cos(w) x[t]``; fit ``2 cos(w)`` per column and require
    the residual to vanish. The first 16 rows are tried before the whole tensor."""
    if x.shape[0] < 8 or x.shape[1] < 1:
        return False
    head = np.asarray(x[:16], dtype=np.float64)
    return _recurrence_holds(head) and _recurrence_holds(np.asarray(x, dtype=np.float64))


def windowed_sinusoids(rows: np.ndarray) -> bool:
    """Every row is one window times a sinusoid: divided by the common envelope (the largest
    magnitude over rows at each sample, which a DFT's zero-frequency row makes the window itself),
    the rows are sinusoids wherever the envelope is not small."""
    if rows.shape[0] < 4 or rows.shape[1] < 16:
        return False
    env = np.abs(rows).max(axis=0)
    keep = np.flatnonzero(env >= ENVELOPE * env.max())
    if keep.size < 16 or np.any(np.diff(keep) != 1):
        return False
    return sinusoidal((rows[:, keep] / env[keep]).T)


def filterbank(rows: np.ndarray) -> bool:
    """Non-negative rows, each one triangle (rising then falling linearly on a single support), their
    peaks in increasing order: a mel (or linear, or Bark) filterbank."""
    if rows.shape[0] < 4 or rows.shape[1] < 8 or np.min(rows) < 0:
        return False
    peaks, wide = [], 0
    for row in rows:
        support = np.flatnonzero(row > FLOOR * max(float(row.max()), 1e-30))
        if support.size < 1 or np.any(np.diff(support) != 1):
            return False
        peak = int(np.argmax(row))
        rise, fall = np.diff(row[support[0] : peak + 1]), np.diff(row[peak : support[-1] + 1])
        if np.any(rise < -FLOOR * row.max()) or np.any(fall > FLOOR * row.max()):
            return False
        for side in (rise, fall):  # linear: equal steps on each side
            if side.size > 1 and np.ptp(side) > TOLERANCE * row.max() + 1e-12:
                return False
        peaks.append(peak)
        wide += support.size >= 3
    return bool(np.all(np.diff(peaks) >= 0)) and peaks[-1] > peaks[0] and wide * 2 >= len(peaks)


def _recurrence_holds(x: np.ndarray) -> bool:
    a, b = x[1:-1], x[2:] + x[:-2]
    aa = (a * a).sum(axis=0)
    factor = (a * b).sum(axis=0) / np.where(aa > 0, aa, 1.0)
    scale = np.abs(x).max(axis=0)
    live = (scale > 0) & (x.std(axis=0) > 0)
    if not live.any():
        return False
    residual = np.abs(b - factor * a).max(axis=0)
    fits = (residual <= np.maximum(TOLERANCE * scale, FLOOR * scale.max())) & (
        np.abs(factor) <= 2 + TOLERANCE
    )
    oscillates = (np.abs(factor[live]) < 1.99).any()  # not merely a straight ramp
    return bool(fits[live].all() and oscillates)
