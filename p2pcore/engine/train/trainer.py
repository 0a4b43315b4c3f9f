"""The training loop. Plugins provide networks, tensors and loss terms; the engine owns every
optimiser step.

One iteration: the task's tensors are made lazily; the discriminator side is updated on detached
fakes (its objective halved by the loss term), then, every `n_critic` iterations, the generator
side with the discriminators frozen. The generators' forward passes are computed once and shared
by both sides.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from p2pcore.checkpoint.files import link_checkpoint, read_checkpoint, resume_candidates, write_checkpoint
from p2pcore.engine.build.assemble import assemble
from p2pcore.engine.build.data import Collate, EpochOrder, SeededItems, raise_carried
from p2pcore.engine.build.device import autocast, resolve_device
from p2pcore.engine.build.init import init_weights, load_pretrained
from p2pcore.engine.build.placement import SingleDevice, placement_for
from p2pcore.engine.evaluate.samples import sample
from p2pcore.engine.evaluate.scoring import EvalResult, Evaluator, write_json
from p2pcore.engine.infer.protocols import pad_to_multiple
from p2pcore.engine.train.ema import WeightAverage
from p2pcore.engine.train.interrupts import deferred_interrupts
from p2pcore.engine.train.log import MetricsLog
from p2pcore.engine.train.recompute import checkpoint_activations
from p2pcore.engine.train.run_state import capture, restore
from p2pcore.engine.train.update import DivergenceGuard, Progress, SideUpdate, make_adam
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe
from p2pcore.rundir import check_run_dir, exclusive

EPOCH_FILE = re.compile(r"epoch_(\d+)\.safetensors$")


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


class Trainer:
    """Builds everything a recipe names and runs it; see :meth:`fit`."""

    def __init__(self, recipe: Recipe, host: Host, out_dir: str | Path, *,
                 on_step: Callable[[Mapping[str, Any]], None] | None = None,
                 placement: SingleDevice | None = None) -> None:
        self.recipe = recipe
        self.host = host
        self.out_dir = Path(out_dir)
        self.on_step = on_step
        self.cfg = cfg = recipe.train
        self.placement = placement or placement_for(resolve_device(cfg.device), channels_last=cfg.channels_last,
                                                    compile=cfg.compile)
        self.device = self.placement.device
        world = self.placement.world_size
        if cfg.batch_size % world:
            raise P2PError(f"train.batch_size {cfg.batch_size} does not split over {world} processes", key=
                           "train.batch_size", hint=f"use a multiple of {world}: the batch is shared out evenly")
        seed_everything(recipe.seed + self.placement.rank, cfg.deterministic)  # DDP broadcasts rank 0's weights
        run = assemble(recipe, host)
        self.spec, self.task, self.adapter, self.nets, self.terms = run.spec, run.task, run.adapter, run.nets, run.terms
        self._check_data()
        self.train_set = self.adapter.dataset("train", train=True)
        if len(self.train_set) == 0:
            raise P2PError("the training split is empty", key="data", hint="run `p2p data check RECIPE`")
        for net in self.nets.values():
            init_weights(net, recipe.init)
        self.pretrained = load_pretrained(self.nets, recipe.init)  # replaced by the checkpoint's on resume
        if cfg.activation_checkpointing:
            self._checkpoint_activations()
        for net in self.nets.values():
            self.placement.place(net)
        for term in self.terms:
            if isinstance(term.loss, nn.Module):
                self.placement.place(term.loss)
                self.placement.wrap_term(term.loss)
        self.size_multiple = run.size_multiple()
        self.optimizers = self._optimizers()
        players = {side: [p for p, player in self.spec.players.items() if player.side == side and p in self.optimizers]
                   for side in ("discriminator", "generator")}
        self.updates = {side: SideUpdate(side, {p: self.optimizers[p] for p in names},
                                         torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16"))
                        for side, names in players.items() if names}
        roles = {side: [r for p in names for r in self.spec.players[p].roles if r in self.nets]
                 for side, names in players.items()}
        self.average = WeightAverage(self.nets, roles["generator"], cfg.ema) if cfg.ema else None
        self.forward_nets = self.placement.wrap(self.nets)  # a data-parallel wrapper broadcasts rank 0's weights
        if self.average is not None:
            self.average.reset()
        self.frozen_in_g = roles["discriminator"]
        # the generator side runs frozen discriminators as plain modules: a data-parallel wrapper would
        # wait for gradients that frozen parameters never get
        self.generator_view = self.forward_nets if self.placement.world_size == 1 else {
            **self.forward_nets, **SingleDevice.wrap(self.placement, {r: self.nets[r] for r in self.frozen_in_g})}
        self.schedule = host.build("schedule", recipe.schedule, key="schedule")
        self.progress = Progress()
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl" if self.placement.is_main else Path(os.devnull))
        self.collate = Collate(self.spec.images)
        self._last_save = time.monotonic()
        self._last_metrics: dict[str, float] = {}
        # every process evaluates alike (same weights, data and seed), so schedules that read figures agree
        self.evaluator = Evaluator(recipe, self.spec, host, device=self.device, precision=cfg.precision) \
            if recipe.eval.metrics else None
        self.best: dict[str, Any] = {}  # the figure that selects best.safetensors: its value and epoch

    def _checkpoint_activations(self) -> None:
        for role in (r for r in self.nets if self.spec.roles[r].kind == "generator"):
            if not checkpoint_activations(self.nets[role]):
                warnings.warn(f"train.activation_checkpointing is off for model.{role}: "
                              f"{self.recipe.model[role].name} names no checkpoint_segments()", stacklevel=3)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        out = {}
        for name, player in self.spec.players.items():
            params = [p for role in player.roles if role in self.nets for p in self.nets[role].parameters()]
            if params:
                settings = self.recipe.optim.for_player(name)
                out[name] = make_adam(params, lr=settings["lr"], betas=tuple(settings["betas"]),
                                      weight_decay=settings["weight_decay"])
        return out

    # -- public -----------------------------------------------------------------------------
    def summary(self) -> str:
        """One line on what is about to run, for the console."""
        nets = ", ".join(f"{role} {self.recipe.model[role].name} {sum(p.numel() for p in net.parameters()):,}"
                         for role, net in self.nets.items())
        terms = " + ".join(f"{t.weight:g}*{t.label}" for t in self.terms)
        start = f"; starting from {self.recipe.init.checkpoint} ({', '.join(self.pretrained)})" \
            if self.pretrained else ""
        return (f"{self.recipe.task.name} on {self.device} ({self.cfg.precision}): {len(self.train_set)} training "
                f"items, {nets} parameters; loss {terms}{start}")

    def total_steps(self) -> int:
        total = self.batches_per_epoch() * self.cfg.epochs
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    def batches_per_epoch(self) -> int:
        if self.placement.world_size > 1:  # whole global batches only
            return len(self.train_set) // self.cfg.batch_size
        return math.ceil(len(self.train_set) / self.cfg.batch_size)

    def fit(self, *, resume: bool = False) -> RunResult:
        """Train to the end (or `max_steps`), holding the run directory's lock throughout (the main
        process of a data-parallel run holds it for all)."""
        if not self.placement.is_main:
            self.placement.barrier()
            return self._fit(resume)
        check_run_dir(self.out_dir, resume=resume)
        with exclusive(self.out_dir):
            self.placement.barrier()
            return self._fit(resume)

    def _fit(self, resume: bool) -> RunResult:
        if resume:
            self._resume()
        if self.placement.is_main:
            self._write_recipe()
        order = EpochOrder(len(self.train_set), self.recipe.seed, rank=self.placement.rank,
                           world=self.placement.world_size, batch=self.cfg.batch_size)
        loader = self._loader(SeededItems(self.train_set, self.recipe.seed), order)
        samples = self.sample_batch()
        if self.evaluator:  # a metric that cannot score this data fails now, not after the first epoch
            self.evaluate(limit=self.recipe.eval.batch_size)
        with self.metrics, deferred_interrupts() as self._stop_requested:
            self._loop(loader, order, samples)
        self.refresh_report()
        return RunResult(self.out_dir, self.progress.step, self.progress.epoch, self._last_metrics)

    # -- the loop ---------------------------------------------------------------------------
    def _loop(self, loader: DataLoader, order: EpochOrder, samples: dict | None) -> None:
        p = self.progress
        self.guard = DivergenceGuard(self.cfg.divergence_patience, self.device, self.checkpoint_dir, p)
        per_step = self.recipe.schedule.params.per == "step"
        sums: dict[str, torch.Tensor] = {}  # loss values of the finite steps since the last log line, on the device
        counted = torch.zeros((), device=self.device)
        while p.epoch < self.cfg.epochs:
            self.task.start_epoch(p.epoch, self.nets)
            self._set_lr(p.epoch)
            order.set_position(p.epoch, p.batch * self.cfg.batch_size)
            for batch in loader:
                if per_step:
                    self._set_lr(p.epoch + p.batch / self.batches_per_epoch())
                logs, bad = self.train_step(raise_carried(batch))
                p.step += 1
                p.batch += 1
                p.skipped_files += int(batch["skipped"].sum()) if "skipped" in batch else 0
                self.guard.record(bad, logs)
                for k, v in logs.items():
                    kept = torch.where(bad > 0, torch.zeros_like(v), v)
                    sums[k] = sums[k] + kept if k in sums else kept
                counted = counted + (1 - bad)
                logging = p.step % self.cfg.log_every == 0
                self.guard.sync(p, force=logging)
                if logging and float(counted):
                    self._log(self._averages(sums, counted))
                    sums, counted = {}, torch.zeros((), device=self.device)
                # one process alone must not stop a data-parallel run: they agree at log steps
                stop = self._stop_requested() if self.placement.world_size == 1 else \
                    logging and self.placement.any(self._stop_requested())
                if stop:
                    self.guard.sync(p, force=True)
                    self.save_latest()
                    raise KeyboardInterrupt
                if self._due_for_save(logging):
                    self.guard.sync(p, force=True)
                    if not p.bad_steps:  # never checkpoint inside a bad streak
                        self.save_latest()
                if self.cfg.max_steps and p.step >= self.cfg.max_steps:
                    break
            else:
                p.epoch += 1
                p.batch = 0
                self._end_epoch(samples)
                continue
            break  # max_steps reached mid-epoch
        self.guard.sync(p, force=True)
        if float(counted):
            self._log(self._averages(sums, counted))
        self.save_latest()

    def _averages(self, sums: Mapping[str, torch.Tensor], counted: torch.Tensor) -> dict[str, float]:
        """Mean loss values over the logged steps (and over every process)."""
        n = float(self.placement.mean(counted))
        return {k: float(self.placement.mean(v)) / n for k, v in sums.items()}

    def train_step(self, batch: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One discriminator-side update, then (every n_critic steps) one generator-side update.
        Returns the detached loss values and a device flag: 1.0 when a side's update was skipped as
        non-finite. Nothing in it waits for the device."""
        batch = self._to_device(batch)
        logs: dict[str, torch.Tensor] = {}
        flags: list[torch.Tensor] = []
        with autocast(self.device, self.cfg.precision):
            base = self.task.step_tensors(self.forward_nets, batch)
        generator_due = (self.progress.step + 1) % self.cfg.n_critic == 0
        if "discriminator" in self.updates:
            self._requires_grad(self.frozen_in_g, True)
            parts = self._losses("discriminator", base)
            flags.append(self.updates["discriminator"](parts, dict.fromkeys(parts, 1.0), logs))
            self.task.after_step("discriminator", self.nets, self.progress.step)
        if "generator" in self.updates and (generator_due or "discriminator" not in self.updates):
            self._requires_grad(self.frozen_in_g, False)
            parts = self._losses("generator", base)
            flags.append(self.updates["generator"](parts, {t.label: t.weight for t in self.terms}, logs))
            self._requires_grad(self.frozen_in_g, True)
            if self.average is not None:
                self.average.update()
            self.task.after_step("generator", self.nets, self.progress.step)
        flags = [f for f in flags if f is not None]
        bad = torch.stack(flags).amax() if flags else torch.zeros((), device=self.device)
        return logs, bad

    def _losses(self, side: str, base: Any) -> dict[str, torch.Tensor]:
        """Each term's contribution to one side, computed in that side's view of the step tensors."""
        with autocast(self.device, self.cfg.precision):
            nets = self.forward_nets if side == "discriminator" else self.generator_view
            phase = self.task.phase_tensors(side, nets, base)
            parts = {}
            for term in self.terms:
                try:
                    value = (term.loss.discriminator_loss(phase) if side == "discriminator"
                             else term.loss.generator_loss(phase))
                except P2PError as error:
                    raise P2PError(error.message, file=error.file, key=error.key or f"loss.{term.label}",
                                   hint=error.hint, details=error.details) from None
                if value is not None:
                    parts[term.label] = value
        return parts

    # -- helpers ----------------------------------------------------------------------------
    def _requires_grad(self, roles: list[str], flag: bool) -> None:
        for role in roles:
            for p in self.nets[role].parameters():
                p.requires_grad_(flag)

    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Move a batch to the device; image keys whose sides are not multiples of what the
        generators need (native sizes, `preprocess = "none"`) are padded by reflection, all alike."""
        out = {}
        for k, v in batch.items():
            if k in self.spec.images and isinstance(v, torch.Tensor):
                out[k] = self.placement.to_device(pad_to_multiple(v, self.size_multiple)[0])
            elif isinstance(v, torch.Tensor):
                out[k] = v.to(self.device, non_blocking=True)
            else:
                out[k] = v
        return out

    def _loader(self, dataset: SeededItems, order: EpochOrder) -> DataLoader:
        workers = self.cfg.num_workers
        if workers == "auto":
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            workers = min(8, cpus - 1) if self.device.type == "cuda" else (0 if cpus <= 4 else 2)
        return DataLoader(dataset, batch_size=self.cfg.batch_size // self.placement.world_size, sampler=order,
                          collate_fn=self.collate,
                          num_workers=workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                          # workers' base seed from a generator of its own: starting the loader must not move the
                          # training process's random state, or a resumed run would draw other dropout masks
                          generator=torch.Generator().manual_seed(self.recipe.seed),
                          prefetch_factor=4 if workers else None, drop_last=False)

    def _set_lr(self, position: float) -> None:
        factor = self.schedule.factor(position, self.cfg.epochs)
        for player, optimizer in self.optimizers.items():
            lr = self.recipe.optim.for_player(player)["lr"] * factor
            for group in optimizer.param_groups:
                group["lr"] = lr

    def _check_data(self) -> None:
        check = getattr(self.adapter, "check", None)
        if check is None:
            return
        report = check("train")
        if not report.ok:
            count = getattr(report, "problem_count", len(report.problems))
            shown = report.problems[:12]
            more = len(report.problems) - len(shown)
            raise P2PError(f"the training data has {count} problem(s)", key="data",
                           details=shown + ([f"... and {more} more lines"] if more else []),
                           hint="fix the files listed, or see `p2p data check RECIPE` for the full report")

    def _log(self, values: Mapping[str, float]) -> None:
        p = self.progress
        per_epoch = self.batches_per_epoch()
        first = next(iter(self.optimizers.values()))
        record = {"step": p.step, "epoch": p.epoch + min(p.batch, per_epoch) / per_epoch,
                  "time": round(time.time(), 3), **{k: round(v, 6) for k, v in values.items()},
                  "lr": first.param_groups[0]["lr"],
                  "skipped_files": p.skipped_files, "skipped_steps": p.skipped_steps}
        self._last_metrics.update(values)
        self._write(record)

    def _write(self, record: Mapping[str, Any]) -> None:
        if not self.placement.is_main:
            return
        self.metrics.write(record)
        if self.on_step:
            self.on_step(record)

    def sample_batch(self) -> dict | None:
        """A fixed batch of test images (train images if there is no test split) for grids."""
        for split in ("test", "train"):
            try:
                data = self.adapter.dataset(split, train=False)
            except P2PError:
                continue
            if len(data):
                items = [data[i] for i in range(min(self.cfg.sample_count, len(data)))]
                shapes = [tuple(item[k].shape for k in self.spec.images if k in item) for item in items]
                same_size = [item for item, shape in zip(items, shapes, strict=True) if shape == shapes[0]]
                return torch.utils.data.default_collate(same_size)
        return None

    def _end_epoch(self, samples: dict | None) -> None:
        p = self.progress
        self.guard.sync(p, force=True)
        figures: dict[str, float] = {}
        last = p.epoch == self.cfg.epochs
        if samples is not None and (p.epoch % self.cfg.sample_every == 0 or last):
            figures = self.sample(samples, self.out_dir / "samples" / f"epoch_{p.epoch:03d}.png"
                                  if self.placement.is_main else None)
            if figures:
                self._last_metrics.update(figures)
                self._write({"step": p.step, "epoch": p.epoch, "time": round(time.time(), 3),
                             **{k: round(v, 6) for k, v in figures.items()}})
        evaluated = bool(self.evaluator) and (p.epoch % self.recipe.eval.every == 0 or last)
        improved = self._evaluate_epoch(figures) if evaluated else False
        self.schedule.observe(p.epoch, figures)
        if not p.bad_steps:  # inside a streak of skipped steps the last good checkpoint stays
            self._save_epoch(best=improved)
        if evaluated:
            self.refresh_report()

    def _evaluate_epoch(self, figures: dict[str, float]) -> bool:
        """Score the epoch, log and write the figures (adding them to `figures`); whether `[eval] best` improved."""
        p = self.progress
        try:
            result = self.evaluate()
        except BaseException:  # the epoch's training is kept, whatever went wrong in scoring it
            if not p.bad_steps:
                self._save_epoch()
            raise
        found = {k: v for k, v in result.figures.items() if v is not None}
        figures.update(found)
        self._last_metrics.update(found)
        self._write({"step": p.step, "epoch": p.epoch, "time": round(time.time(), 3),
                     **{k: None if v is None else round(v, 6) for k, v in result.figures.items()}})
        if self.placement.is_main:
            result.write(self.out_dir / "eval" / f"epoch_{p.epoch:03d}.json")
        return self._track_best(result)

    def refresh_report(self) -> None:
        """Rewrite report.html (main process); a page that cannot be written is a warning, never the end of
        training."""
        if not self.placement.is_main:
            return
        from p2pcore.report import write_report

        try:
            write_report(self.out_dir)
        except P2PError as error:
            warnings.warn(f"report.html not refreshed: {error.message}", stacklevel=2)

    def evaluate(self, limit: int | None = None) -> EvalResult:
        """The `[eval]` metrics over their split (or its first `limit` items), with the networks samples use
        (the weight average when kept)."""
        assert self.evaluator is not None
        nets = {**self.nets, **(self.average.nets if self.average else {})}
        result = self.evaluator(self.task, nets, self.adapter, size_multiple=self.size_multiple,
                                seed=self.recipe.seed, limit=limit)
        result.epoch, result.step = self.progress.epoch, self.progress.step
        return result

    def _track_best(self, result: EvalResult) -> bool:
        """Whether this evaluation improved the figure `[eval] best` names (a non-finite one never does)."""
        key = self.recipe.eval.best
        value = result.figures.get(key) if key else None
        if value is None:
            return False
        higher = result.higher_is_better[key]
        previous = self.best.get("value")
        if previous is not None and not (value > previous if higher else value < previous):
            return False
        self.best = {"metric": key, "value": value, "epoch": self.progress.epoch, "step": self.progress.step}
        return True

    def sample(self, samples: Mapping[str, Any], path: Path | None) -> dict[str, float]:
        """Write the task's sample grid with the paper's test protocol (the weight average when kept);
        return the L1 of each direction with a target."""
        nets = {**self.nets, **(self.average.nets if self.average else {})}
        return sample(self.task, self.spec, nets, self._to_device(samples), path, seed=self.recipe.seed,
                      device=self.device, precision=self.cfg.precision,
                      display=getattr(self.adapter, "display", None))

    # -- checkpoints ------------------------------------------------------------------------
    def _write_recipe(self) -> None:
        import tomli_w

        (self.out_dir / "recipe.toml").write_text(tomli_w.dumps(self.recipe.to_toml_dict()))

    def _due_for_save(self, logging: bool) -> bool:
        """Every `checkpoint_steps` steps, and once `checkpoint_minutes` have passed: the processes of a
        data-parallel run agree on that at log steps, since every one of them takes part in a save."""
        steps = self.cfg.checkpoint_steps
        minutes = self.cfg.checkpoint_minutes
        if steps and self.progress.step % steps == 0:
            return True
        timed = bool(minutes) and time.monotonic() - self._last_save >= minutes * 60
        return timed if self.placement.world_size == 1 else logging and self.placement.any(timed)

    def components(self) -> list[dict[str, str]]:
        """Every component of the run, nested ones included, with its distribution and version."""
        r = self.recipe
        return self.host.describe_all([r.task, r.data, r.schedule, *r.model.values(),
                                       *(spec.ref() for spec in r.loss.values())])

    def state(self, ranks: list[dict[str, Any]] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return capture(self, ranks)

    def _rank_states(self) -> list[dict[str, Any]] | None:
        """Every process's random state, for a data-parallel run's checkpoint (each process draws its own
        dropout masks); every process calls this at each save."""
        if self.placement.world_size == 1:
            return None
        own = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            own["cuda"] = torch.cuda.get_rng_state(self.device)
        return self.placement.gather(own)

    def save_latest(self) -> None:
        """Write latest.safetensors (the main process of a data-parallel run, with every process's random
        state); the caller has synced the divergence guard's counts into `progress`."""
        ranks = self._rank_states()
        if not self.placement.is_main:
            return
        tensors, metadata = self.state(ranks)
        write_checkpoint(self.checkpoint_dir / "latest.safetensors", tensors, metadata)
        self._last_save = time.monotonic()

    def _save_epoch(self, *, best: bool = False) -> None:
        """Write epoch_XXX once and make latest (and best, when this epoch improved `[eval] best`) the same
        file (a link, else a copy), all atomically."""
        ranks = self._rank_states()
        if not self.placement.is_main:
            return
        epoch = self.progress.epoch
        target = self.checkpoint_dir / f"epoch_{epoch:03d}.safetensors"
        tensors, metadata = self.state(ranks)
        write_checkpoint(target, tensors, metadata)
        link_checkpoint(target, self.checkpoint_dir / "latest.safetensors")
        if best:
            link_checkpoint(target, self.checkpoint_dir / "best.safetensors")
            write_json(self.out_dir / "eval" / "best.json", self.best)
        self._last_save = time.monotonic()
        keep_every = self.cfg.keep_every
        epochs = sorted(int(m.group(1)) for f in self.checkpoint_dir.iterdir()
                        if (m := EPOCH_FILE.search(f.name)))
        for old in epochs[:-self.cfg.keep_last]:
            if not (keep_every and old % keep_every == 0):
                (self.checkpoint_dir / f"epoch_{old:03d}.safetensors").unlink(missing_ok=True)

    def _resume(self) -> None:
        for leftover in self.checkpoint_dir.glob(".*.tmp"):  # a write cut short by a crash
            leftover.unlink(missing_ok=True)
        latest = self.checkpoint_dir / "latest.safetensors"
        candidates = resume_candidates(self.checkpoint_dir)
        problems = [] if candidates[:1] == [latest] or not latest.exists() else [f"{latest.name} is damaged"]
        for path in candidates:
            try:
                ckpt = read_checkpoint(path)
            except P2PError as exc:  # a header that reads, tensors that do not
                problems.append(f"{path.name}: {exc.message}")
                continue
            if problems:
                warnings.warn(f"{'; '.join(problems)}; resuming from {path.name}, the newest checkpoint that "
                              "reads cleanly", stacklevel=2)
            restore(self, ckpt)
            self.metrics.forget_after(self.progress.step)
            return
        raise P2PError(f"no checkpoint to resume from in {self.checkpoint_dir}", file=str(self.out_dir),
                       details=problems, hint="drop --resume to start a new run, or point --out at an "
                                              "existing run")
