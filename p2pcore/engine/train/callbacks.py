"""The callbacks of a run, called in the main process only: the run's own log, those the command hands over
(progress display, report refresh) and those the recipe names (``[callbacks.<label>]``, built by their
plugins). One that raises stops the run with a one-screen error naming it; the checkpoints already written
stay as they are."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pcore.api.callbacks import Callback, RunInfo
from p2pcore.errors import P2PError
from p2pcore.plugins import Host


@dataclass(frozen=True)
class Named:
    """A callback, what to call it in messages and the recipe key it comes from (None for the built-in ones)."""

    label: str
    callback: Any
    key: str | None = None


def from_recipe(refs: Mapping[str, Any], host: Host) -> list[Named]:
    """The callbacks a recipe's ``[callbacks.<label>]`` tables name, built by their plugins."""
    return [Named(label, host.build("callback", ref, key=f"callbacks.{label}"), f"callbacks.{label}")
            for label, ref in refs.items()]


def given(callbacks: Iterable[Callback]) -> list[Named]:
    """Callbacks handed to the trainer, named by their class."""
    return [Named(type(c).__name__, c) for c in callbacks]


class Callbacks:
    """Calls each callback in order; `active` is False in the other processes of a data-parallel run."""

    def __init__(self, named: list[Named], *, active: bool = True) -> None:
        self.named = named if active else []

    def on_run_start(self, run: RunInfo) -> None:
        self._call("on_run_start", run)

    def on_step(self, step: int, epoch: float, figures: Mapping[str, float | None]) -> None:
        self._call("on_step", step, epoch, figures)

    def on_epoch_end(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        self._call("on_epoch_end", epoch, figures)

    def on_evaluation(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        self._call("on_evaluation", epoch, figures)

    def on_checkpoint(self, epoch: int, step: int, path: Path) -> None:
        self._call("on_checkpoint", epoch, step, path)

    def on_run_end(self, status: str) -> None:
        """Every callback hears the end, even after one failed; when the run failed or was interrupted, a
        callback failing now is a warning, so the error that stopped the run is the one shown."""
        first: P2PError | None = None
        for named in self.named:
            try:
                self._one(named, "on_run_end", status)
            except P2PError as error:
                if status == "finished" and first is None:
                    first = error
                else:
                    warnings.warn(error.message, stacklevel=2)
        if first is not None:
            raise first

    def _call(self, method: str, *args: Any) -> None:
        for named in self.named:
            self._one(named, method, *args)

    @staticmethod
    def _one(named: Named, method: str, *args: Any) -> None:
        hint = ("the run stopped; its checkpoints are intact: fix the callback" +
                (f" or remove [{named.key}] from the recipe" if named.key else "") +
                ", then continue with `p2p run --resume`")
        try:
            getattr(named.callback, method)(*args)
        except P2PError as error:
            raise P2PError(f"the callback {named.label!r} failed in {method}: {error.message}", file=error.file,
                           key=error.key or named.key, hint=error.hint or hint, details=error.details) from None
        except Exception as exc:
            raise P2PError(f"the callback {named.label!r} failed in {method}: {type(exc).__name__}: {exc}",
                           key=named.key, hint=hint) from exc
