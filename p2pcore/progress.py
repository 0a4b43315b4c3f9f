"""Rich progress bars: training (epoch, step, it/s, ETA, the latest loss terms) and translating files."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from p2pcore.api.callbacks import Callback, RunInfo
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe
from p2pcore.records import is_term
from p2pcore.rundir import RunDir


class TrainingProgress(Callback):
    """The training bar, as a callback: steps done of the run's total, the epoch, the step rate and the latest
    loss terms (or the figures of the latest epoch end)."""

    def __init__(self, console: Console, *, disable: bool = False) -> None:
        self.console, self.disable = console, disable
        self.bar: Progress | None = None
        self.task: Any = None
        self.epochs = 0
        self.mark: tuple[float, int] | None = None  # (time, step) of the last update
        self.rate = 0.0
        self.step = 0

    def on_run_start(self, run: RunInfo) -> None:
        columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]} it/s"), TimeRemainingColumn(),
                   TextColumn("{task.fields[losses]}"))
        total = run.steps_per_epoch * run.epochs
        max_steps = run.recipe.get("train", {}).get("max_steps")
        self.epochs, self.step = run.epochs, run.start_step
        self.bar = Progress(*columns, console=self.console, disable=self.disable, transient=False)
        self.bar.start()
        self.task = self.bar.add_task("train", total=min(total, max_steps) if max_steps else total,
                                      completed=run.start_step, epoch="-", rate="-", losses="")

    def on_step(self, step: int, epoch: float, figures: Mapping[str, float | None]) -> None:
        self.step = step
        if figures:
            self._show(epoch, {k: v for k, v in figures.items() if is_term(k)})

    def on_epoch_end(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        if figures:
            self._show(epoch, figures)

    def on_evaluation(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        if figures:
            self._show(epoch, figures)

    def on_run_end(self, status: str) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _show(self, epoch: float, figures: Mapping[str, float | None]) -> None:
        now = time.monotonic()
        if self.mark is not None and now > self.mark[0] and self.step > self.mark[1]:
            self.rate = (self.step - self.mark[1]) / (now - self.mark[0])
        self.mark = (now, self.step)
        losses = "  ".join(f"{k} {v:.3f}" for k, v in figures.items() if v is not None)
        if self.bar is not None:
            self.bar.update(self.task, completed=self.step, epoch=f"{epoch:.2f}/{self.epochs}",
                            rate=f"{self.rate:.2f}", losses=losses)


def train_with_progress(recipe: Recipe, host: Host, out_dir: Path | RunDir, *, resume: bool, quiet: bool,
                        console: Console) -> Any:
    """Train as `p2p run` does: with the progress bar and the report kept current, handed to the trainer as
    callbacks."""
    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.report.refresh import ReportRefresh

    trainer = Trainer(recipe, host, out_dir, callbacks=[TrainingProgress(console, disable=quiet), ReportRefresh()])
    if not quiet:
        console.print(trainer.summary())
    return trainer.fit(resume=resume)


class FilesPerSecond(ProgressColumn):
    """The recent rate of finished files."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0.0:.1f} files/s")


@contextlib.contextmanager
def file_progress(console: Console, total: int, *, disable: bool) -> Iterator[Callable[[int], None]]:
    """A bar over `total` files; yields the function that advances it by n finished files."""
    columns = (TextColumn("translating"), BarColumn(), MofNCompleteColumn(), FilesPerSecond(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=disable) as bar:
        task = bar.add_task("translate", total=total)
        yield lambda n: bar.advance(task, n)
