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
    """Base of callbacks. The engine calls them, in the main process only, between steps; every method
    is optional. `figures` are plain floats keyed as the run's ``metrics.jsonl`` keys them
    (``G/l1``, ``eval/psnr``, ``eval/<metric>/<part>``). A callback must not change the run: it observes."""

    def on_run_start(self, run: RunInfo) -> None:
        """Before the first step (of this process: a resumed run calls it again)."""

    def on_step(self, step: int, epoch: int, figures: Mapping[str, float]) -> None:
        """After every optimisation step; `figures` is empty except at logged steps (every
        ``train.log_every``), where it holds the averages of each loss term since the last logged step."""

    def on_epoch_end(self, epoch: int, figures: Mapping[str, float]) -> None:
        """After an epoch's sample grid, with the figures logged at its end (``samples/l1``)."""

    def on_evaluation(self, epoch: int, figures: Mapping[str, float]) -> None:
        """After an `[eval]` pass, with its figures."""

    def on_checkpoint(self, epoch: int, step: int, path: Path) -> None:
        """After a checkpoint file was written (atomically) at `path`."""

    def on_run_end(self, status: str) -> None:
        """When the run stops: "finished", "interrupted" (Ctrl-C, SIGTERM, max_steps) or "failed"."""
