"""The training display, as a callback: a status line (epoch, bar, steps, rate, ETA) and below it the latest
loss terms and the latest epoch end's figures, each group on lines of its own, laid out for the terminal's
width at every refresh. Written to a file or a pipe (a job's log), where nothing can be redrawn, the display
is printed as whole lines once per epoch, when the next epoch's first step is taken, and at the run's end."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions
from rich.live import Live
from rich.text import Text

from p2pcore.api.callbacks import Callback, RunInfo
from p2pcore.plugins import Host
from p2pcore.progress.layout import clip, figure_lines, groups, status_line
from p2pcore.recipe import Recipe
from p2pcore.records import SKIPPED, is_term
from p2pcore.rundir import RunDir

RATE_WINDOW_S = 30.0
"""The rate is the steps of about the last this many seconds over their time (all of them until then)."""
MAX_FIGURE_LINES = 8


class StepClock:
    """Steps and their times, for the rate and the ETA: known from the second step this process takes."""

    def __init__(self, window: float = RATE_WINDOW_S) -> None:
        self.window = window
        self.marks: deque[tuple[float, int]] = deque()

    def mark(self, step: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.marks and step <= self.marks[-1][1]:
            return
        self.marks.append((now, step))
        while len(self.marks) > 2 and now - self.marks[1][0] >= self.window:
            self.marks.popleft()

    def rate(self) -> float | None:
        if len(self.marks) < 2:
            return None
        (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None

    def latest(self) -> float | None:
        """When the latest step was marked."""
        return self.marks[-1][0] if self.marks else None

    def eta(self, remaining: int, now: float | None = None) -> float | None:
        """Seconds to go for `remaining` steps at the current rate, counted down since the latest step."""
        rate = self.rate()
        if rate is None or rate <= 0:
            return None
        since = (time.monotonic() if now is None else now) - self.marks[-1][0]
        return max(0.0, remaining / rate - since)


class TrainingProgress(Callback):
    """The training display: steps done of the run's total, the epoch, the step rate and ETA on one line that
    always fits; the latest loss terms, and the figures of the latest epoch end, on lines of their own."""

    def __init__(self, console: Console, *, disable: bool = False) -> None:
        self.console, self.disable = console, disable
        self.live: Live | None = None
        self.shown = False  # whether the display is on (redrawn live, or printed epoch by epoch)
        self.printed = -1  # not live: the latest epoch whose display was printed
        self.lock = threading.Lock()
        self.clock = StepClock()
        self.epochs = self.total = self.step = 0
        self.epoch: float | None = None
        self.losses: dict[str, Any] = {}
        self.ended: tuple[int, dict[str, Any]] | None = None  # an epoch and the figures of its end

    def on_run_start(self, run: RunInfo) -> None:
        total = run.steps_per_epoch * run.epochs
        max_steps = run.recipe.get("train", {}).get("max_steps")
        self.total = min(total, max_steps) if max_steps else total
        self.epochs, self.step = run.epochs, run.start_step
        self.epoch = float(run.start_epoch) if run.resumed else None
        self.shown = not self.disable
        if self.shown and (self.console.is_terminal or self.console.is_jupyter):
            self.live = Live(self, console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def on_step(self, step: int, epoch: float, figures: Mapping[str, float | None]) -> None:
        with self.lock:
            ended = self.ended[0] if self.ended is not None else None
        if self.shown and self.live is None and ended is not None and ended > self.printed and epoch > ended:
            self.printed = ended  # the next epoch has begun: the ended one's figures (evaluation too) are all in
            self.console.print(self)  # as that epoch ended, before this step's figures
        with self.lock:
            self.step, self.epoch = step, epoch
            self.clock.mark(step)
            if figures:
                self.losses = {k: v for k, v in figures.items() if is_term(k) or (k in SKIPPED and v)}

    def on_epoch_end(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        self._ended(epoch, figures)

    def on_evaluation(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        self._ended(epoch, figures)

    def on_run_end(self, status: str) -> None:
        """Leave the display's final state on the console, its last line ended, for what is printed next.

        Only a terminal (or a notebook) is redrawn live. To any other console (a file, a pipe) Live writes
        nothing until it stops, and then its last render without the newline that ends the last line (it adds
        that newline for a terminal only), so the next print would run on from it: there the display is
        printed as whole lines, epoch by epoch and here."""
        if self.live is not None:
            self.live.stop()
            self.live = None
        elif self.shown:
            self.console.print(self)
        self.shown = False

    def _ended(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        if not figures:
            return
        with self.lock:
            before = self.ended[1] if self.ended is not None and self.ended[0] == epoch else {}
            self.ended = (epoch, {**before, **figures})

    def lines(self, width: int) -> list[Text]:
        """The display at `width` columns."""
        with self.lock:
            step, epoch, losses, ended = self.step, self.epoch, dict(self.losses), self.ended
            # printed to a log rather than redrawn, the display is a snapshot as of the latest step
            now = self.clock.latest() if self.live is None else None
            rate, eta = self.clock.rate(), self.clock.eta(max(0, self.total - step), now=now)
        status = status_line(step=step, total=self.total, rate=rate, eta=eta, width=width, epoch=epoch,
                             epochs=self.epochs)
        first = Text(status.text)
        if status.bar is not None:
            start, done, end = status.bar
            first.stylize("bar.finished" if step >= self.total else "bar.complete", start, done)
            first.stylize("bar.back", done, end)
        shown = figure_lines(groups(losses), width)
        if ended is not None:
            shown += figure_lines(groups(ended[1]), width, heading=f"epoch {ended[0]}")
        if len(shown) > MAX_FIGURE_LINES:
            shown = shown[:MAX_FIGURE_LINES - 1] + [clip(f"  ... {len(shown) - MAX_FIGURE_LINES + 1} more "
                                                         "line(s): see metrics.jsonl", width)]
        return [first, *(Text(line) for line in shown)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        try:
            lines = self.lines(max(20, options.max_width))
        except Exception as exc:  # noqa: BLE001 - a display never stops a run: say what failed, in its place
            lines = [Text(clip(f"step {self.step}/{self.total} (display: {type(exc).__name__})", options.max_width))]
        for line in lines:
            line.no_wrap, line.overflow = True, "crop"
            yield line


def train_with_progress(recipe: Recipe, host: Host, out_dir: Path | RunDir, *, resume: bool, quiet: bool,
                        console: Console) -> Any:
    """Train as `p2p run` does: with the progress display and the report kept current, handed to the trainer as
    callbacks."""
    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.report.refresh import ReportRefresh

    trainer = Trainer(recipe, host, out_dir, callbacks=[TrainingProgress(console, disable=quiet), ReportRefresh(host)])
    if not quiet:
        console.print(trainer.summary())
    return trainer.fit(resume=resume)
