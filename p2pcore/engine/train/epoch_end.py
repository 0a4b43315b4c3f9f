"""What happens between epochs: the sample grid (and the L1 of each direction with a target), the `[eval]` pass
and whether it improved `[eval] best`, the figures the schedule observes, and the epoch's checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from p2pcore.api.tasks import TaskSpec
from p2pcore.checkpoint.run_state import RunState
from p2pcore.engine.build.placement import SingleDevice
from p2pcore.engine.evaluate.samples import sample
from p2pcore.engine.evaluate.scoring import EvalResult, Evaluator
from p2pcore.engine.train.callbacks import Callbacks
from p2pcore.engine.train.checkpointing import Checkpointing
from p2pcore.engine.train.feed import DataFeed
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe
from p2pcore.records import logged
from p2pcore.rundir import RunDir


class EpochEnd:
    """Samples, scores and checkpoints a finished epoch; `figures` keeps the latest value of each figure."""

    def __init__(self, recipe: Recipe, spec: TaskSpec, host: Host, state: RunState, feed: DataFeed,
                 placement: SingleDevice, run_dir: RunDir, checkpointing: Checkpointing, callbacks: Callbacks,
                 figures: dict[str, float]) -> None:
        self.recipe, self.spec, self.state, self.feed, self.placement = recipe, spec, state, feed, placement
        self.run_dir, self.checkpointing, self.callbacks, self.figures = run_dir, checkpointing, callbacks, figures
        self.cfg = recipe.train
        # every process evaluates alike (same weights, data and seed), so schedules that read figures agree
        self.evaluator = Evaluator(recipe, spec, host, device=placement.device, precision=self.cfg.precision) \
            if recipe.eval.metrics else None

    def nets(self) -> dict[str, Any]:
        """The networks samples and evaluations use: the weight average's where one is kept."""
        average = self.state.average
        return {**self.state.nets, **(average.nets if average is not None else {})}

    def sample(self, samples: Mapping[str, Any], path: Any) -> dict[str, float]:
        """Write the task's sample grid with the paper's test protocol (unless `path` is None); return the L1 of
        each direction with a target."""
        return sample(self.state.task, self.spec, self.nets(), self.feed.to_device(samples), path,
                      seed=self.recipe.seed, device=self.placement.device, precision=self.cfg.precision,
                      display=getattr(self.feed.adapter, "display", None))

    def evaluate(self, limit: int | None = None) -> EvalResult:
        """The `[eval]` metrics over their split (or its first `limit` items)."""
        assert self.evaluator is not None
        result = self.evaluator(self.state.task, self.nets(), self.feed.adapter, size_multiple=self.feed.size_multiple,
                                seed=self.recipe.seed, limit=limit)
        result.epoch, result.step = self.state.counters.epoch, self.state.counters.step
        return result

    def __call__(self, samples: Mapping[str, Any] | None) -> None:
        """The end of epoch `counters.epoch` (counted from 1); the divergence guard's counts are synced."""
        c = self.state.counters
        figures: dict[str, float] = {}
        last = c.epoch == self.cfg.epochs
        if samples is not None and (c.epoch % self.cfg.sample_every == 0 or last):
            try:
                figures = self.sample(samples, self.run_dir.sample_grid(c.epoch) if self.placement.is_main else None)
            except P2PError as error:  # a grid that cannot be written (a full disk): the epoch's training is kept
                raise self._kept(error) from None
            self.figures.update(figures)
        self.callbacks.on_epoch_end(c.epoch, logged(figures))
        evaluated = self.evaluator is not None and (c.epoch % self.recipe.eval.every == 0 or last)
        improved = self._evaluate_epoch(figures) if evaluated else False
        self.state.schedule.observe(c.epoch, figures)
        if not c.bad_steps:  # inside a streak of skipped steps the last good checkpoint stays
            self.checkpointing.save_epoch(best=improved)

    def _kept(self, error: P2PError) -> P2PError:
        """`error`, once the epoch's checkpoint is written (outside a streak of skipped steps), saying so; or
        the checkpoint's own error, which says what is intact, with `error` among its details."""
        if self.state.counters.bad_steps:
            return error
        try:
            self.checkpointing.save_epoch()
        except P2PError as failed:
            return P2PError(failed.message, file=failed.file, key=failed.key, hint=failed.hint,
                            details=[*failed.details, f"before that: {error}"])
        saved = self.run_dir.epoch_checkpoint(self.state.counters.epoch)
        kept = f"the epoch's checkpoint {saved.name} is written: continue with `p2p run --resume`"
        return P2PError(error.message, file=error.file, key=error.key, details=error.details,
                        hint=f"{error.hint}; {kept}" if error.hint else kept)

    def _evaluate_epoch(self, figures: dict[str, float]) -> bool:
        """Score the epoch, write and announce the figures (adding them to `figures`); whether `[eval] best`
        improved."""
        c = self.state.counters
        try:
            result = self.evaluate()
        except BaseException:  # the epoch's training is kept, whatever went wrong in scoring it
            if not c.bad_steps:
                self.checkpointing.save_epoch()
            raise
        found = {k: v for k, v in result.figures.items() if v is not None}
        figures.update(found)
        self.figures.update(found)
        if self.placement.is_main:
            try:
                result.write(self.run_dir.evaluation(c.epoch))
            except P2PError as error:  # the figures cannot be saved (a full disk): the epoch's training is kept
                raise self._kept(error) from None
        self.callbacks.on_evaluation(c.epoch, logged(result.figures))
        return self._track_best(result)

    def _track_best(self, result: EvalResult) -> bool:
        """Whether this evaluation improved the figure `[eval] best` names (a non-finite one never does)."""
        key = self.recipe.eval.best
        value = result.figures.get(key) if key else None
        if value is None:
            return False
        higher = result.higher_is_better[key]
        previous = self.state.best.get("value")
        if previous is not None and not (value > previous if higher else value < previous):
            return False
        c = self.state.counters
        self.state.best = {"metric": key, "value": value, "epoch": c.epoch, "step": c.step}
        return True
