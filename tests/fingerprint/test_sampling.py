"""Kept positions: alike for related shapes, bounded reads, and exact values from byte ranges."""

import ml_dtypes
import numpy as np
import pytest

from scratchcheck.fingerprint.sampling import (
    Plan,
    Split,
    axis_positions,
    coalesce,
    read_positions,
    row_starts,
    rows_from_ranges,
    sample,
    sample_positions,
)
from scratchcheck.io.mapping import open_mapped


def test_same_shape_keeps_same_positions_and_appended_rows_keep_the_shared_ones():
    a = sample_positions((4096, 2048))
    b = sample_positions((4096, 2048))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # A vocabulary grown by 64 rows at the end: the same shift, so the shared rows are the same rows.
    grown = sample_positions((4160, 2048))
    assert np.array_equal(grown[0][grown[0] < 4096], a[0])


def test_an_axis_is_kept_alike_as_rows_and_as_columns():
    # The residual axis of an up projection [units, d] and of a down projection [d, units].
    up, down = sample_positions((1408, 4096)), sample_positions((4096, 1408))
    assert np.array_equal(up[1], down[0]) and np.array_equal(up[0], down[1])


def test_sparser_choice_is_a_subset_of_a_denser_one():
    dense, sparse = axis_positions(100_000, 8), axis_positions(100_000, 10)
    assert set(sparse) <= set(dense) and 0 < sparse.size < dense.size


def test_another_key_keeps_other_positions():
    assert not np.array_equal(axis_positions(4096, 6), axis_positions(4096, 6, Plan(key=7)))


@pytest.mark.parametrize("shape", [(4096, 4096), (1024, 8192), (151_552, 256), (8, 1536, 512)])
def test_kept_rows_are_at_most_a_thirty_second_of_a_large_tensor(shape):
    positions = sample_positions(shape)
    starts, span = row_starts(shape, 2, positions)
    read = starts.size * span
    assert read <= 2 * np.prod(shape) / 32 * 1.35  # hash counts scatter around n / 2**shift
    assert all(p.size >= 2 for p in positions)


def test_small_tensors_are_stored_whole():
    assert sample_positions((512, 511)) is None
    assert sample_positions((16,), Plan(whole_below=8)) is not None


def test_a_router_keeps_every_expert_row_and_samples_its_columns():
    rows, cols = sample_positions((128, 4096))
    assert rows.size == 128 and 16 <= cols.size < 96  # about 4096 / 2**7 = 32, binomially scattered


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16])
@pytest.mark.parametrize("shape", [(300, 200), (40_000,), (3, 90, 70)])
def test_kept_values_read_by_rows_or_by_ranges_equal_direct_indexing(tmp_path, dtype, shape):
    plan = Plan(whole_below=16, axis_target=4)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    positions = sample_positions(shape, plan)
    offset = 24
    blob = b"\0" * offset + x.tobytes()
    path = tmp_path / "blob"
    path.write_bytes(blob)

    class Ranges:  # a remote file: only ``read_ranges``
        def read_ranges(self, ranges):
            assert ranges == coalesce(ranges)
            return [(a, blob[a:b]) for a, b in ranges]

    expected = x[np.ix_(*positions)]
    mapped = open_mapped(path)
    try:
        by_rows, read = read_positions(mapped, offset, shape, x.dtype, positions)
        starts, span = row_starts(shape, x.itemsize, positions, offset)
        assert mapped.bytes_read == read == starts.size * span
    finally:
        mapped.close()
    by_ranges, _ = read_positions(Ranges(), offset, shape, x.dtype, positions)
    assert by_rows.tobytes() == by_ranges.tobytes() == expected.tobytes()
    assert sample(x, plan)[1].tobytes() == expected.tobytes()


def test_rows_are_cut_from_coalesced_ranges_where_they_lie():
    blob = bytes(range(256)) * 4
    starts = np.array([0, 4, 100, 600])
    fetched = [(a, blob[a:b]) for a, b in coalesce([(int(s), int(s) + 8) for s in starts])]
    assert len(fetched) == 3
    rows = rows_from_ranges(starts, 8, fetched)
    assert [bytes(r) for r in rows] == [blob[s : s + 8] for s in starts]


def test_coalesce_merges_touching_and_overlapping_ranges_in_order():
    assert coalesce([(10, 20), (0, 10), (30, 40), (35, 50)]) == [(0, 20), (30, 50)]


def test_a_split_axis_keeps_in_each_part_what_a_separate_axis_of_its_length_keeps():
    # Fused q, k, v rows [4096 + 1024 + 1024, 4096] against separate q, k and v.
    fused = sample_positions((6144, 4096), split=Split(0, (4096, 1024, 1024)))
    q, k = sample_positions((4096, 4096)), sample_positions((1024, 4096))
    assert np.array_equal(fused[1], q[1])
    rows = fused[0]
    assert np.array_equal(rows[rows < 4096], q[0])
    assert np.array_equal(rows[(rows >= 4096) & (rows < 5120)] - 4096, k[0])
    assert np.array_equal(rows[rows >= 5120] - 5120, k[0])
    # Not what the fused tensor's own length keeps.
    assert not np.array_equal(rows, sample_positions((6144, 4096))[0])
