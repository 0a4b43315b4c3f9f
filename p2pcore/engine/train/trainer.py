"""The training loop. Plugins provide networks, tensors and loss terms; the engine owns every optimiser step.

The trainer wires collaborators that each have one job (the data feed, the optimisation, one training step,
the epoch end, the checkpointing, the callbacks) around one :class:`~p2pcore.checkpoint.run_state.RunState`,
and runs the loop: steps, logged figures every `log_every` steps, checkpoints when due, the epoch ends, and
the callbacks told of each.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import torch
from torch.utils.data import DataLoader

from p2pcore.api.callbacks import Callback, RunInfo
from p2pcore.atomicfile import write_text_atomically
from p2pcore.checkpoint.run_state import Counters, RunState
from p2pcore.engine.build.assemble import assemble
from p2pcore.engine.build.data import EpochOrder, raise_carried
from p2pcore.engine.build.device import resolve_device
from p2pcore.engine.build.init import load_pretrained_optimizers
from p2pcore.engine.build.placement import SingleDevice, placement_for
from p2pcore.engine.evaluate.scoring import EvalResult
from p2pcore.engine.train import callbacks as run_callbacks
from p2pcore.engine.train.checkpointing import Checkpointing
from p2pcore.engine.train.ema import WeightAverage
from p2pcore.engine.train.epoch_end import EpochEnd
from p2pcore.engine.train.feed import DataFeed
from p2pcore.engine.train.interrupts import deferred_interrupts
from p2pcore.engine.train.networks import prepare_networks
from p2pcore.engine.train.optimisation import Optimisation
from p2pcore.engine.train.step import TrainStep
from p2pcore.engine.train.update import DivergenceGuard
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe
from p2pcore.records import RecordLog, step_figures
from p2pcore.rundir import RunDir


@dataclass
class RunResult:
    out_dir: Path
    steps: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)


def seed_everything(seed: int, deterministic: bool) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False


class LossSums:
    """Loss values of the finite steps since the last logged one, summed on the device (nothing waits)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.clear()

    def clear(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counted = torch.zeros((), device=self.device)

    def add(self, logs: Mapping[str, torch.Tensor], bad: torch.Tensor) -> None:
        for k, v in logs.items():
            kept = torch.where(bad > 0, torch.zeros_like(v), v)
            self.sums[k] = self.sums[k] + kept if k in self.sums else kept
        self.counted = self.counted + (1 - bad)

    def means(self, placement: SingleDevice) -> dict[str, float]:
        """Mean loss values over the steps summed (and over every process)."""
        n = float(placement.mean(self.counted))
        return {k: float(placement.mean(v)) / n for k, v in self.sums.items()}


class Trainer:
    """Builds everything a recipe names and runs it; see :meth:`fit`. `callbacks` follow the run in the main
    process, after its own log and before those the recipe's ``[callbacks.<label>]`` tables name."""

    def __init__(self, recipe: Recipe, host: Host, out_dir: str | Path | RunDir, *,
                 callbacks: Iterable[Callback] = (), placement: SingleDevice | None = None) -> None:
        self.recipe, self.host, self.cfg = recipe, host, recipe.train
        self.run_dir = out_dir if isinstance(out_dir, RunDir) else RunDir(out_dir)
        cfg = self.cfg
        self.placement = placement or placement_for(resolve_device(cfg.device), channels_last=cfg.channels_last,
                                                    compile=cfg.compile)
        self.device = self.placement.device
        world = self.placement.world_size
        if cfg.batch_size % world:
            raise P2PError(f"train.batch_size {cfg.batch_size} does not split over {world} processes", key=
                           "train.batch_size", hint=f"use a multiple of {world}: the batch is shared out evenly")
        seed_everything(recipe.seed + self.placement.rank, cfg.deterministic)  # rank 0's weights are broadcast
        run = assemble(recipe, host)
        self.spec, self.task, self.adapter, self.nets, self.terms = run.spec, run.task, run.adapter, run.nets, run.terms
        self.data = DataFeed(run.adapter, run.spec, recipe, self.placement, run.size_multiple())
        self.pretrained = prepare_networks(recipe, run.spec, run.nets, run.terms, self.placement)
        self.optimisation = optimisation = Optimisation(recipe, run.spec, run.nets, host, self.placement)
        self.pretrained += load_pretrained_optimizers(optimisation.optimizers, recipe.init)
        averaged = [n for n in optimisation.roles.get("generator", [])  # what translation runs
                    if n in run.spec.roles or run.spec.own[n].translation]
        average = WeightAverage(run.nets, averaged, cfg.ema) if cfg.ema else None
        self.state = RunState(run.nets, optimisation.optimizers, optimisation.scalers, run.task,
                              optimisation.schedule, average, batches_per_epoch=self.data.batches_per_epoch())
        self.stepper = TrainStep(run.task, run.terms, run.nets, optimisation.updates,
                                 optimisation.roles["discriminator"], average, self.placement, cfg)
        self.callbacks = run_callbacks.Callbacks(
            [run_callbacks.Named(self.run_dir.metrics.name, RecordLog(self.run_dir.metrics)),
             *run_callbacks.given(callbacks)], active=self.placement.is_main)
        self.checkpointing = Checkpointing(self.run_dir, self.state, recipe, host, self.placement, self.callbacks)
        self.figures: dict[str, float] = {}  # the latest value of each figure, for the result
        self.epoch_end = EpochEnd(recipe, run.spec, host, self.state, self.data, self.placement, self.run_dir,
                                  self.checkpointing, self.callbacks, self.figures)  # builds the [eval] metrics
        if self.placement.is_main:  # last: building them must not move the random state of the run
            self.callbacks.named += run_callbacks.from_recipe(recipe.callbacks, host)

    # -- what the run holds, by name ----------------------------------------------------------------------------
    @property
    def progress(self) -> Counters:
        return self.state.counters

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.state.optimizers

    @property
    def updates(self) -> dict[str, Any]:
        return self.optimisation.updates

    @property
    def average(self) -> WeightAverage | None:
        return self.state.average  # type: ignore[return-value]

    @property
    def forward_nets(self) -> dict[str, torch.nn.Module]:
        return self.stepper.forward_nets

    @property
    def train_set(self) -> Any:
        return self.data.train_set

    # -- public -------------------------------------------------------------------------------------------------
    def summary(self) -> str:
        """One line on what is about to run, for the console."""
        model = self.recipe.model
        nets = ", ".join(f"{role} {model[role].name if role in model else 'own'} "
                         f"{sum(p.numel() for p in net.parameters()):,}" for role, net in self.nets.items())
        terms = " + ".join(f"{t.weight:g}*{t.label}" for t in self.terms)
        start = f"; starting from {self.recipe.init.checkpoint} ({', '.join(self.pretrained)})" \
            if self.pretrained else ""
        return (f"{self.recipe.task.name} on {self.device} ({self.cfg.precision}): {len(self.train_set)} training "
                f"items, {nets} parameters; loss {terms}{start}")

    def total_steps(self) -> int:
        total = self.batches_per_epoch() * self.cfg.epochs
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    def batches_per_epoch(self) -> int:
        return self.data.batches_per_epoch()

    def train_step(self, batch: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One step on a batch (moved to the device here): the detached loss values and a device flag, 1.0
        when a side's update was skipped as non-finite. Nothing in it waits for the device."""
        return self.stepper(self.data.to_device(batch), self.state.counters.step)

    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        return self.data.to_device(batch)

    def sample_batch(self) -> dict | None:
        return self.data.sample_batch()

    def sample(self, samples: Mapping[str, Any], path: Path | None) -> dict[str, float]:
        return self.epoch_end.sample(samples, path)

    def evaluate(self, limit: int | None = None) -> EvalResult:
        return self.epoch_end.evaluate(limit)

    def fit(self, *, resume: bool = False) -> RunResult:
        """Train to the end (or `max_steps`), holding the run directory's lock throughout (the main
        process of a data-parallel run holds it for all)."""
        if not self.placement.is_main:
            self.placement.barrier()
            result = self._fit(resume)
        else:
            with self.run_dir.claim(resume=resume):
                self.placement.barrier()
                result = self._fit(resume)
        self.placement.close()
        return result

    def _fit(self, resume: bool) -> RunResult:
        if resume:
            self.checkpointing.resume()
        if self.placement.is_main:
            write_text_atomically(self.run_dir.recipe, tomli_w.dumps(self.recipe.to_toml_dict()),
                                  what="the run's recipe")
        order = self.data.order()
        loader = self.data.loader(order)
        samples = self.data.sample_batch()
        if self.epoch_end.evaluator:  # a metric that cannot score this data fails now, not after the first epoch
            self.epoch_end.evaluate(limit=self.recipe.eval.batch_size)
        c = self.state.counters
        status = "failed"
        try:
            self.callbacks.on_run_start(RunInfo(
                run_dir=self.run_dir.path, recipe=self.recipe.to_toml_dict(), epochs=self.cfg.epochs,
                steps_per_epoch=self.batches_per_epoch(), start_epoch=c.epoch, start_step=c.step, resumed=resume))
            with deferred_interrupts() as self._stop_requested:
                self._loop(loader, order, samples)
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.callbacks.on_run_end(status)
        return RunResult(self.run_dir.path, c.step, c.epoch, self.figures)

    # -- the loop -----------------------------------------------------------------------------------------------
    def _loop(self, loader: DataLoader, order: EpochOrder, samples: dict | None) -> None:
        c, cfg = self.state.counters, self.cfg
        guard = self.guard = DivergenceGuard(cfg.divergence_patience, self.device, self.run_dir.latest, c)
        per_step = self.recipe.schedule.params.per == "step"
        per_epoch = self.batches_per_epoch()
        sums = LossSums(self.device)
        start = c.step
        while c.epoch < cfg.epochs and not (cfg.max_steps and c.step >= cfg.max_steps):  # a resume may be done
            self.task.start_epoch(c.epoch, self.nets)
            self.optimisation.set_lr(c.epoch)
            order.set_position(c.epoch, c.batch * cfg.batch_size)
            for batch in loader:
                if per_step:
                    self.optimisation.set_lr(c.epoch + c.batch / per_epoch)
                logs, bad = self.train_step(raise_carried(batch))
                c.step += 1
                c.batch += 1
                c.skipped_files += int(batch["skipped"].sum()) if "skipped" in batch else 0
                guard.record(bad, logs)
                sums.add(logs, bad)
                logging = c.step % cfg.log_every == 0
                # the last step logs what it has summed, whatever log_every says
                last = bool(cfg.max_steps and c.step >= cfg.max_steps) or (
                    c.epoch + 1 == cfg.epochs and c.batch >= per_epoch)
                guard.sync(c, force=logging or last)
                figures = self._logged(sums) if (logging or last) and float(sums.counted) else {}
                self.callbacks.on_step(c.step, c.epoch + min(c.batch, per_epoch) / per_epoch, figures)
                # one process alone must not stop a data-parallel run: they agree at log steps
                stop = self._stop_requested() if self.placement.world_size == 1 else \
                    logging and self.placement.any(self._stop_requested())
                if stop:
                    guard.sync(c, force=True)
                    self.checkpointing.save_latest()
                    raise KeyboardInterrupt
                if self.checkpointing.due(logging):
                    guard.sync(c, force=True)
                    if not c.bad_steps:  # never checkpoint inside a bad streak
                        self.checkpointing.save_latest()
                if cfg.max_steps and c.step >= cfg.max_steps:
                    break
            else:
                c.epoch += 1
                c.batch = 0
                guard.sync(c, force=True)
                self.epoch_end(samples)
                continue
            break  # max_steps reached mid-epoch
        guard.sync(c, force=True)
        if c.step != start:  # a resume at or past its end takes no step and leaves its checkpoints as they are
            self.checkpointing.save_latest()

    def _logged(self, sums: LossSums) -> dict[str, float | None]:
        """The figures of a logged step (clearing the sums): loss means, learning rate, skip counters."""
        means = sums.means(self.placement)
        sums.clear()
        self.figures.update(means)
        c = self.state.counters
        return step_figures(means, rates=self.optimisation.rates, skipped_files=c.skipped_files,
                            skipped_steps=c.skipped_steps)
