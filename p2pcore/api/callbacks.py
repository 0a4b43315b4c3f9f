"""The callback contract: code that follows a training run (a logger, a dashboard, a notifier) without
touching the loop. The run's own JSONL log, report refresh and progress display are callbacks too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pcore.api.base import Params


class CallbackParams(Params):
    """Base of every callback's parameters (a recipe's ``[callbacks.<label>]`` table)."""


@dataclass(frozen=True)
class RunInfo:
    """What a callback learns when a run starts: where it writes, its resolved recipe (plain TOML values),
    how long it is and where it starts (a resumed run starts past 0)."""

    run_dir: Path
    recipe: Mapping[str, Any]
    epochs: int
    steps_per_epoch: int
    start_epoch: int
    start_step: int
    resumed: bool
    extra: Mapping[str, Any] = field(default_factory=dict)


class Callback:
    """Base of callbacks. The engine calls them, in the main process only (rank 0 of a data-parallel run),
    between steps, in this order: ``on_run_start``; ``on_step`` after each step; at each epoch end
    ``on_epoch_end``, then ``on_evaluation`` where ``[eval]`` runs; ``on_checkpoint`` after each checkpoint
    written; ``on_run_end``. Every method is optional. `figures` are plain floats keyed and rounded as the run's
    ``metrics.jsonl`` logs them (``G/l1``, ``lr``, ``samples/l1``, ``eval/psnr``, ``eval/<metric>/<part>``; ``lr``
    is the first player's rate, ``lr/<player>`` that of each player learning at another); the run's own log is
    written through these same calls. Epochs count from 1 (epoch 1 ends after the first pass
    over the data). A callback must not change the run: it observes. One that raises stops the run with an
    error naming it; the checkpoints already written stay as they are, so the run can be resumed."""

    def on_run_start(self, run: RunInfo) -> None:
        """Before the first step (of this process: a resumed run calls it again, with `run.resumed` and where
        it starts)."""

    def on_step(self, step: int, epoch: float, figures: Mapping[str, float | None]) -> None:
        """After every optimisation step (`step` counts from 1; `epoch` is the position in epochs, 1.5 halfway
        through the second); `figures` is empty except at logged steps (every ``train.log_every``, and the
        run's last step), where it holds the averages of each loss term since the last logged step, the
        learning rate and the counts of skipped files and steps."""

    def on_epoch_end(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        """After epoch `epoch`'s sample grid, with the figures logged at its end (``samples/l1``; empty in
        epochs without a grid, see ``train.sample_every``)."""

    def on_evaluation(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        """After an `[eval]` pass at the end of epoch `epoch`, with its figures (None where not finite)."""

    def on_checkpoint(self, epoch: int, step: int, path: Path) -> None:
        """After a checkpoint file was written (atomically) at `path`: ``latest.safetensors`` or an epoch's
        ``epoch_NNN.safetensors``, holding the run at `step` with `epoch` epochs done."""

    def on_run_end(self, status: str) -> None:
        """When the run stops: "finished" (its epochs done, or ``train.max_steps`` reached), "interrupted"
        (Ctrl-C, SIGTERM: the latest checkpoint continues it) or "failed" (an error, reported after this)."""
