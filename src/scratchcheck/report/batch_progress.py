"""A progress bar over a batch of items (checkpoints to index) with a count and an ETA.

Silent when output is not a terminal, like ``StreamProgress``, so logs hold only the summary.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class BatchProgress:
    """``start`` once with the number of items, ``advance`` as each one finishes (in any order)."""

    def __init__(self, console: Console) -> None:
        self._bar = (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[label]}", style="dim"),
                console=console,
                transient=True,
            )
            if console.is_terminal
            else None
        )
        self._task: TaskID | None = None

    def __enter__(self) -> BatchProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, total: int, description: str) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(escape(description), total=max(total, 1), label="")

    def advance(self, label: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, label=escape(label[-48:]))
