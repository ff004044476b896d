"""A progress bar with bytes read and rate while tensors stream; silent when output is not a terminal."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from rich.markup import escape

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class StreamProgress:
    """The ``progress`` object ``compare`` reports to: ``start`` once per reference, ``advance`` per pair.

    Use as a context manager. When ``console`` is not a terminal (a pipe, a file, CI) every call is a
    no-op, so logs and captured output hold only the report.
    """

    def __init__(self, console: Console) -> None:
        self.enabled = console.is_terminal
        self._bar = _bar(console) if self.enabled else None
        self._task: TaskID | None = None

    def __enter__(self) -> StreamProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, total_bytes: int, description: str) -> None:
        """A new stream of ``total_bytes`` (one reference's learned pairs) begins."""
        if self._bar is None:
            return
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        self._task = self._bar.add_task(escape(description), total=max(total_bytes, 1), label="")

    def advance(self, nbytes: int, label: str) -> None:
        """``nbytes`` more were read; ``label`` names the tensor just measured."""
        if self._bar is None or self._task is None:
            return
        self._bar.update(self._task, advance=nbytes, label=escape(label[-48:]))


def _bar(console: Console) -> Progress:
    """The bar itself; rich's progress module is imported only where there is a terminal to show it."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[label]}", style="dim"),
        console=console,
        transient=True,
    )
