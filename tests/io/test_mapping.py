"""Memory maps: scattered reads without faulting whole tensors in, and pages handed back."""

import numpy as np
import pytest

from scratchcheck.align.sketch import sample_index
from scratchcheck.io import open_model
from scratchcheck.io.mapping import drop_pages, gather, released, take_rows
from scratchcheck.io.writer import write_safetensors


@pytest.fixture
def mapped(tmp_path):
    values = np.arange(64 * 48, dtype=np.float32).reshape(64, 48)
    write_safetensors(tmp_path / "m.safetensors", {"w": values, "b": np.arange(5, dtype=np.int64)})
    with open_model(tmp_path / "m.safetensors") as model:
        yield model.read("w"), values


@pytest.mark.parametrize(
    "make",
    [lambda w: w, lambda w: w.T, lambda w: w[3:40:3, ::2], lambda w: w[::-1], lambda w: w.reshape(-1)[7:]],
    ids=["contiguous", "transposed", "strided", "reversed", "flat-offset"],
)
def test_gather_reads_exactly_what_fancy_indexing_reads(mapped, make):
    view, values = mapped
    expected_view = make(values)
    index = sample_index(expected_view.shape, size=50)
    got = gather(make(view), index)
    np.testing.assert_array_equal(got, expected_view[index])
    assert got.dtype == np.float32


@pytest.mark.parametrize(
    "make",
    [lambda w: w, lambda w: w[5:50], lambda w: w.reshape(16, 4, 48), lambda w: w.reshape(-1), lambda w: w.T],
    ids=["contiguous", "row-slice", "3-d", "1-d", "transposed"],
)
def test_take_rows_reads_exactly_what_fancy_indexing_reads(mapped, make):
    view, values = mapped
    rows = np.array([0, 2, 3, 11, 15])
    got = take_rows(make(view), rows)
    np.testing.assert_array_equal(got, make(values)[rows])
    assert got.dtype == np.float32 and got.shape == make(values)[rows].shape


def test_take_rows_result_outlives_the_mapping(tmp_path):
    values = np.random.default_rng(1).standard_normal((30, 7)).astype(np.float32)
    write_safetensors(tmp_path / "m.safetensors", {"w": values})
    with open_model(tmp_path / "m.safetensors") as model:
        got = take_rows(model.read("w"), np.array([1, 29]))
    np.testing.assert_array_equal(got, values[[1, 29]])


def test_gather_on_memory_that_is_not_mapped_is_plain_indexing():
    values = np.random.default_rng(0).standard_normal((10, 10))
    index = (np.array([0, 3, 9]), np.array([1, 1, 8]))
    np.testing.assert_array_equal(gather(values, index), values[index])


def test_released_and_drop_pages_leave_values_readable(mapped):
    view, values = mapped
    with released(view):
        total = float(view.sum())
    drop_pages(view.T)
    assert total == float(values.sum())
    np.testing.assert_array_equal(view, values)  # pages fault back in from the file


def test_sampling_a_huge_tensor_does_not_enumerate_its_positions():
    # A permutation of all 10^12 positions would need terabytes; sampling must not build one.
    index = sample_index((1_000_000, 1_000_000), size=1024)
    flat = np.ravel_multi_index(index, (1_000_000, 1_000_000))
    assert flat.size == 1024 and np.all(np.diff(flat) > 0)


def test_rows_read_in_parallel_once_reads_are_slow_equal_rows_read_in_turn(tmp_path, monkeypatch):
    import scratchcheck.io.mapping as mapping

    data = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8)
    (tmp_path / "f").write_bytes(data.tobytes())
    starts = np.sort(np.random.default_rng(1).choice((1 << 20) - 100, 50, replace=False))
    expected = data[starts[:, None] + np.arange(100)]
    calls = []
    monkeypatch.setattr(mapping, "_SLOW_ROW", -1.0)  # every read counts as waiting on the device
    real = mapping.MappedFile._fill
    monkeypatch.setattr(
        mapping.MappedFile, "_fill", lambda self, *a: calls.append(len(a[2])) or real(self, *a)
    )
    handle = mapping.open_mapped(tmp_path / "f")
    try:
        assert np.array_equal(handle.read_rows(starts, 100), expected)
        assert handle.bytes_read == 50 * 100
    finally:
        handle.close()
    assert sum(calls) == 50 and len(calls) > 2 and max(calls) <= mapping._ROWS_PER_TASK


def test_a_file_with_holes_is_read_in_turn(tmp_path, monkeypatch):
    import scratchcheck.io.mapping as mapping

    path = tmp_path / "sparse"
    with open(path, "wb") as handle:
        handle.write(b"x" * 4096)
        handle.truncate(64 << 20)  # the rest a hole, on file systems that keep them
    monkeypatch.setattr(mapping, "_SLOW_ROW", -1.0)
    calls = []
    real = mapping.MappedFile._fill
    monkeypatch.setattr(
        mapping.MappedFile, "_fill", lambda self, *a: calls.append(len(a[2])) or real(self, *a)
    )
    handle = mapping.open_mapped(path)
    try:
        rows = handle.read_rows(np.arange(0, 32 << 20, 1 << 20), 16)
        if not handle._sparse:
            pytest.skip("this file system stores no holes")
        assert rows[0].tobytes() == b"x" * 16 and not rows[1:].any()
    finally:
        handle.close()
    assert calls == [32]


def test_a_row_past_the_end_of_the_file_is_a_one_line_error_naming_it(tmp_path):
    from scratchcheck.errors import FormatError
    from scratchcheck.io.mapping import open_mapped

    path = tmp_path / "short.bin"
    path.write_bytes(b"\0" * 1000)
    handle = open_mapped(path)
    try:
        with pytest.raises(
            FormatError, match=r"short\.bin.*byte range 990:1010 lies outside the 1000-byte file"
        ):
            handle.read_rows(np.array([0, 990]), 20)
        assert handle.bytes_read == 0
    finally:
        handle.close()


def _uncached_file(path, data: bytes) -> None:
    """Write ``data`` and push it out of the page cache (written back first, then dropped)."""
    import os

    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def test_uncached_rows_are_read_directly_and_leave_the_cache_as_it_was(tmp_path):
    import scratchcheck.io.mapping as mapping

    size = 5 * 4096 + 123  # the last row ends at the end of the file, inside a block
    data = np.random.default_rng(2).integers(0, 256, size, dtype=np.uint8)
    path = tmp_path / "cold.bin"
    _uncached_file(path, data.tobytes())
    starts = np.array([0, 1, 4095, 4096, 9000, size - 300])
    handle = mapping.open_mapped(path)
    try:
        if not handle._uncached(starts, 300):
            pytest.skip("this file system keeps the file cached (or cannot say)")
        rows = handle.read_rows(starts, 300, once=True)
        assert handle.bytes_read == starts.size * 300
        if handle._direct_fd == -2:
            pytest.skip("this file system has no direct I/O")
        # Read through the cache, the rows' pages would be cached now.
        assert handle._uncached(starts, 300)
    finally:
        handle.close()
    np.testing.assert_array_equal(rows, data[starts[:, None] + np.arange(300)])


@pytest.mark.parametrize("cached, once", [(True, True), (False, False)], ids=["cached", "read-again"])
def test_rows_are_read_through_the_cache_when_cached_or_read_again(tmp_path, monkeypatch, cached, once):
    """Cached rows are copied from the cache; rows a caller will read again (not ``once``) go
    through it, so that the bytes come from the device once."""
    import scratchcheck.io.mapping as mapping

    data = np.random.default_rng(3).integers(0, 256, 1 << 16, dtype=np.uint8)
    path = tmp_path / "rows.bin"
    _uncached_file(path, data.tobytes())
    if cached:
        path.read_bytes()
    monkeypatch.setattr(mapping, "_aligned_buffer", lambda n: pytest.fail("read directly"))
    starts = np.array([10, 5000, 60000])
    handle = mapping.open_mapped(path)
    try:
        rows = handle.read_rows(starts, 64, once=once)
    finally:
        handle.close()
    np.testing.assert_array_equal(rows, data[starts[:, None] + np.arange(64)])


def test_a_file_system_without_direct_io_is_read_through_the_cache(tmp_path, monkeypatch):
    import os

    import scratchcheck.io.mapping as mapping

    data = np.random.default_rng(4).integers(0, 256, 3 * 4096, dtype=np.uint8)
    path = tmp_path / "nodirect.bin"
    _uncached_file(path, data.tobytes())
    real_open = os.open

    def refuse_direct(file, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(22, "Invalid argument")
        return real_open(file, flags, *args)

    monkeypatch.setattr(mapping.os, "open", refuse_direct)
    monkeypatch.setattr(mapping.MappedFile, "_uncached", lambda self, starts, span: True)
    handle = mapping.open_mapped(path)
    try:
        rows = handle.read_rows(np.array([7, 4100, 8000]), 100, once=True)
        assert handle._direct_fd == -2
    finally:
        handle.close()
    np.testing.assert_array_equal(rows, data[np.array([7, 4100, 8000])[:, None] + np.arange(100)])
