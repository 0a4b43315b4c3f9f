"""The report kept current while a run trains: a callback that `p2p run` hands to the trainer."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

from p2pcore.api.callbacks import Callback, RunInfo
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.report import write_report
from p2pcore.rundir import RunDir


class ReportRefresh(Callback):
    """Rewrite ``report.html`` once an evaluation's epoch is checkpointed (the page names the latest checkpoint's
    components) and when the run finishes. A page that cannot be written is a warning, never the end of
    training."""

    def __init__(self, host: Host | None = None) -> None:
        self.host = host
        self.run: RunDir | None = None
        self.due = False

    def on_run_start(self, run: RunInfo) -> None:
        self.run = RunDir(run.run_dir)

    def on_evaluation(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        self.due = True

    def on_checkpoint(self, epoch: int, step: int, path: Path) -> None:
        if self.due:
            self.refresh()

    def on_run_end(self, status: str) -> None:
        if status == "finished":
            self.refresh()

    def refresh(self) -> None:
        self.due = False
        if self.run is None:
            return
        try:
            write_report(self.run, self.host)
        except P2PError as error:
            warnings.warn(f"report.html not refreshed: {error.message}", stacklevel=2)
