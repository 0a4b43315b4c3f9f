"""The bar of `p2p translate`: files done of all, the rate and the ETA, both from the files finished since the
bar started, so that the bar and the command's closing summary give the same rate."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from p2pcore.progress.layout import duration, speed


def files_rate(task: Task) -> float | None:
    """Files finished per second since the bar started (a burst of files written together does not make it
    jump, as a rate over the last few updates would)."""
    elapsed = task.elapsed
    if not elapsed or elapsed <= 0 or not task.completed:
        return None
    return task.completed / elapsed


class FilesPerSecond(ProgressColumn):
    """Files finished per second since the bar started."""

    def render(self, task: Task) -> Text:
        return Text(speed(files_rate(task), "files"))


class FilesRemaining(ProgressColumn):
    """The time left at that rate."""

    def render(self, task: Task) -> Text:
        rate = files_rate(task)
        left = None if rate is None or task.total is None else (task.total - task.completed) / rate
        return Text(f"ETA {duration(left)}")


@contextlib.contextmanager
def file_progress(console: Console, total: int, *, disable: bool) -> Iterator[Callable[[int], None]]:
    """A bar over `total` files; yields the function that advances it by n finished files."""
    columns = (TextColumn("translating"), BarColumn(bar_width=24), MofNCompleteColumn(), FilesPerSecond(),
               FilesRemaining())
    with Progress(*columns, console=console, disable=disable) as bar:
        task = bar.add_task("translate", total=total)
        yield lambda n: bar.advance(task, n)
