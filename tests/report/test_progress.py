import io
import re
import time

from rich.console import Console

from scratchcheck.report.progress import StreamProgress


def test_silent_when_not_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    with StreamProgress(console) as progress:
        progress.start(1000, "vs reference")
        progress.advance(500, "model.layers.0.mlp.up_proj.weight")
    assert not progress.enabled and buffer.getvalue() == ""


def test_shows_bytes_and_rate_on_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    with StreamProgress(console) as progress:
        progress.start(2_000_000, "vs qwen-vl-reference")
        progress.advance(500_000, "model.layers.0.mlp.gate_proj.weight")
        time.sleep(0.05)  # the rate needs two samples some time apart
        progress.advance(500_000, "model.layers.0.mlp.up_proj.weight")
        progress._bar.refresh()
        shown = buffer.getvalue()
    assert "vs qwen-vl-reference" in shown and "up_proj" in shown
    assert "1.0/2.0 MB" in shown and re.search(r"\d+(\.\d+)? [kMG]?B/s", shown)


def test_a_second_reference_starts_a_fresh_bar():
    console = Console(file=io.StringIO(), force_terminal=True)
    with StreamProgress(console) as progress:
        progress.start(10, "vs a")
        progress.advance(10, "x")
        progress.start(0, "vs b")  # an empty stream must not divide by zero
        tasks = progress._bar.tasks
    assert [t.description for t in tasks] == ["vs a", "vs b"]
    assert not tasks[0].visible and tasks[1].total == 1


def test_advance_before_start_is_ignored():
    with StreamProgress(Console(file=io.StringIO(), force_terminal=True)) as progress:
        progress.advance(10, "x")
