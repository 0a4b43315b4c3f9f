"""Rich progress bars: training (epoch, step, it/s, ETA, the latest loss terms) and translating files."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from p2pcore.plugins import Host
from p2pcore.recipe import Recipe


def train_with_progress(recipe: Recipe, host: Host, out_dir: Path, *, resume: bool, quiet: bool,
                        console: Console) -> Any:
    from p2pcore.engine.train.trainer import Trainer

    trainer = Trainer(recipe, host, out_dir)
    if not quiet:
        console.print(trainer.summary())
    columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} it/s"), TimeRemainingColumn(),
               TextColumn("{task.fields[losses]}"))
    with Progress(*columns, console=console, disable=quiet, transient=False) as bar:
        progress_task = bar.add_task("train", total=trainer.total_steps(), epoch="-", rate="-", losses="")
        state: dict[str, float] = {}

        def on_step(record: Mapping[str, Any]) -> None:
            now, step = record["time"], record["step"]
            if "t0" in state and now > state["t0"] and step > state["s0"]:
                state["rate"] = (step - state["s0"]) / (now - state["t0"])
            state["t0"], state["s0"] = now, step
            losses = "  ".join(f"{k} {v:.3f}" for k, v in record.items()
                               if "/" in k and not k.endswith("/total"))
            bar.update(progress_task, completed=step, epoch=f"{record['epoch']:.2f}/{recipe.train.epochs}",
                       rate=f"{state.get('rate', 0.0):.2f}", losses=losses)

        trainer.on_step = on_step
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
