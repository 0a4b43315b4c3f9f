"""The two-player training loop. Plugins provide networks, tensors and loss terms; the engine owns
every optimiser step.

One iteration: the task's tensors are made lazily, the discriminator is updated on detached fakes
(its objective halved by the loss term), then the generator is updated with the discriminator
frozen. The generator's forward pass is computed once and shared by both phases.
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

from p2pcore.api import LossTerm, TaskContext
from p2pcore.engine import state as flat
from p2pcore.engine.checkpoint import latest_valid_checkpoint, link_checkpoint, read_checkpoint, write_checkpoint
from p2pcore.engine.data import EpochOrder, SeededItems, collate, raise_carried
from p2pcore.engine.device import autocast, resolve_device
from p2pcore.engine.inference import pad_to_multiple, protocol_mode
from p2pcore.engine.init import init_weights
from p2pcore.engine.interrupts import deferred_interrupts
from p2pcore.engine.metrics import MetricsLog
from p2pcore.engine.samples import save_grid
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe

EPOCH_FILE = re.compile(r"epoch_(\d+)\.safetensors$")


@dataclass
class Term:
    label: str
    weight: float
    loss: LossTerm


@dataclass
class Progress:
    """Where training stands: the next epoch to run and how many of its batches are done."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    bad_steps: int = 0
    skipped_files: int = 0
    skipped_steps: int = 0


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
                 on_step: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        self.recipe = recipe
        self.host = host
        self.out_dir = Path(out_dir)
        self.on_step = on_step
        self.cfg = recipe.train
        seed_everything(recipe.seed, self.cfg.deterministic)
        self.device = resolve_device(self.cfg.device)
        self.adapter = host.build("dataset", recipe.data, key="data")
        self._check_data()
        self.train_set = self.adapter.dataset("train", train=True)
        if len(self.train_set) == 0:
            raise P2PError("the training split is empty", key="data", hint="run `p2p data check RECIPE`")
        self.terms = [Term(label, spec.weight, host.build("loss", spec.ref(), key=f"loss.{label}"))
                      for label, spec in recipe.loss.items()]
        if not self.terms:
            raise P2PError("the recipe has no loss terms", key="loss",
                           hint='add e.g. [loss.l1] name = "l1" weight = 100.0')
        needs_d = any(t.loss.uses_discriminator for t in self.terms)
        self.task = host.build("task", recipe.task, key="task")
        ctx = TaskContext(host=host, a_channels=self.adapter.a_channels, b_channels=self.adapter.b_channels,
                          needs_discriminator=needs_d)
        self.nets: dict[str, nn.Module] = self.task.build_networks(recipe.model, ctx)
        memory = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        for net in self.nets.values():
            init_weights(net, recipe.init)
            net.to(self.device, memory_format=memory)
        self.g_roles = [r for r in self.task.generator_roles if r in self.nets]
        self.size_multiple = max(int(getattr(self.nets[r], "size_multiple", 1)) for r in self.g_roles)
        self.d_roles = [r for r in self.task.discriminator_roles if r in self.nets]
        self.forward_nets = {role: (torch.compile(net) if self.cfg.compile else net)
                             for role, net in self.nets.items()}
        opt = recipe.optim
        self.optimizers = {
            group: torch.optim.Adam([p for r in roles for p in self.nets[r].parameters()], lr=opt.lr,
                                    betas=opt.betas, weight_decay=opt.weight_decay)
            for group, roles in (("generator", self.g_roles), ("discriminator", self.d_roles)) if roles}
        use_scaler = self.cfg.precision == "fp16"
        self.scalers = {group: torch.amp.GradScaler(self.device.type, enabled=use_scaler)
                        for group in self.optimizers}
        self.progress = Progress()
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        self._last_save = time.monotonic()

    # -- public -----------------------------------------------------------------------------
    def summary(self) -> str:
        """One line on what is about to run, for the console."""
        nets = ", ".join(f"{role} {self.recipe.model[role].name} {sum(p.numel() for p in net.parameters()):,}"
                         for role, net in self.nets.items())
        terms = " + ".join(f"{t.weight:g}*{t.label}" for t in self.terms)
        return (f"{self.recipe.task} on {self.device} ({self.cfg.precision}): {len(self.train_set)} training "
                f"items, {nets} parameters; loss {terms}")

    def total_steps(self) -> int:
        per_epoch = math.ceil(len(self.train_set) / self.cfg.batch_size)
        total = per_epoch * self.cfg.epochs
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    def fit(self, *, resume: bool = False) -> RunResult:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise P2PError("the run directory is a file", file=str(self.out_dir),
                           hint="give --out a folder (it is created if missing)")
        if resume:
            self._resume()
        elif (self.checkpoint_dir / "latest.safetensors").exists():
            raise P2PError(f"{self.out_dir} already holds a run", file=str(self.out_dir),
                           hint="add --resume to continue it, or choose another --out")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._write_recipe()
        train_set = self.train_set
        order = EpochOrder(len(train_set), self.recipe.seed)
        loader = self._loader(SeededItems(train_set, self.recipe.seed), order)
        samples = self._sample_batch()
        with self.metrics, deferred_interrupts() as self._stop_requested:
            self._loop(loader, order, samples, len(train_set))
        return RunResult(self.out_dir, self.progress.step, self.progress.epoch, self._last_metrics)

    # -- the loop ---------------------------------------------------------------------------
    def _loop(self, loader: DataLoader, order: EpochOrder, samples: dict | None, n_items: int) -> None:
        p = self.progress
        batches_per_epoch = math.ceil(n_items / self.cfg.batch_size)
        self._last_metrics: dict[str, float] = {}
        sums: dict[str, torch.Tensor] = {}
        counted = 0
        while p.epoch < self.cfg.epochs:
            self._set_lr(p.epoch)
            order.set_position(p.epoch, p.batch * self.cfg.batch_size)
            for batch in loader:
                logs = self.train_step(raise_carried(batch))
                p.step += 1
                p.batch += 1
                p.skipped_files += int(batch["skipped"].sum()) if "skipped" in batch else 0
                if logs is not None:
                    for k, v in logs.items():
                        sums[k] = sums.get(k, 0.0) + v
                    counted += 1
                if p.step % self.cfg.log_every == 0 and counted:
                    self._log({k: float(v) / counted for k, v in sums.items()}, batches_per_epoch)
                    sums, counted = {}, 0
                if self._stop_requested():
                    self.save_latest()
                    raise KeyboardInterrupt
                if self._due_for_save() and not p.bad_steps:  # never checkpoint inside a bad streak
                    self.save_latest()
                if self.cfg.max_steps and p.step >= self.cfg.max_steps:
                    break
            else:
                p.epoch += 1
                p.batch = 0
                self._end_epoch(samples)
                continue
            break  # max_steps reached mid-epoch
        if counted:
            self._log({k: float(v) / counted for k, v in sums.items()}, batches_per_epoch)
        self.save_latest()

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
        """One D update then one G update. Returns detached loss values, or None if skipped."""
        batch = self._to_device(batch)
        logs: dict[str, torch.Tensor] = {}
        with autocast(self.device, self.cfg.precision):
            base = self.task.step_tensors(self.forward_nets, batch)
        if "discriminator" in self.optimizers:
            self._requires_grad(self.d_roles, True)
            with autocast(self.device, self.cfg.precision):
                phase = self.task.discriminator_phase(self.forward_nets, base)
                parts = {t.label: t.loss.discriminator_loss(phase) for t in self.terms}
            parts = {k: v for k, v in parts.items() if v is not None}
            if not self._update("discriminator", parts, {k: 1.0 for k in parts}, "D", logs):
                return None
            self._requires_grad(self.d_roles, False)
        with autocast(self.device, self.cfg.precision):
            phase = self.task.generator_phase(self.forward_nets, base)
            parts = {t.label: t.loss.generator_loss(phase) for t in self.terms}
        parts = {k: v for k, v in parts.items() if v is not None}
        weights = {t.label: t.weight for t in self.terms}
        ok = self._update("generator", parts, weights, "G", logs)
        self._requires_grad(self.d_roles, True)
        if not ok:
            return None
        self.progress.bad_steps = 0
        return logs

    def _update(self, group: str, parts: dict[str, torch.Tensor], weights: Mapping[str, float], tag: str,
                logs: dict[str, torch.Tensor]) -> bool:
        if not parts:
            return True
        total = sum(weights[k] * v.float() for k, v in parts.items())
        optimizer, scaler = self.optimizers[group], self.scalers[group]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        params = [p for group_ in optimizer.param_groups for p in group_["params"] if p.grad is not None]
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params]) if params else total.new_zeros(())
        finite = bool(torch.isfinite(total) & torch.isfinite(grad_norm))
        if not finite and not scaler.is_enabled():
            self._diverging(tag, parts, grad_norm)
            optimizer.zero_grad(set_to_none=True)
            return False
        scaler.step(optimizer)
        scaler.update()
        for k, v in parts.items():
            logs[f"{tag}/{k}"] = v.detach().float()
        logs[f"{tag}/total"] = total.detach()
        return True

    def _diverging(self, tag: str, parts: Mapping[str, torch.Tensor], grad_norm: torch.Tensor) -> None:
        p = self.progress
        p.bad_steps += 1
        p.skipped_steps += 1
        bad = [k for k, v in parts.items() if not torch.isfinite(v).all()]
        what = f"loss term {', '.join(bad)}" if bad else f"{tag} gradient (norm {float(grad_norm)})"
        if p.bad_steps >= self.cfg.divergence_patience:
            raise P2PError(f"training diverged: {what} of the {'generator' if tag == 'G' else 'discriminator'} "
                           f"was not finite for {p.bad_steps} steps in a row (step {p.step})",
                           key=f"loss.{bad[0]}" if bad else "optim.lr",
                           hint="lower optim.lr, use precision = \"fp32\", or check the data; the last good "
                                f"checkpoint is in {self.checkpoint_dir}")

    # -- helpers ----------------------------------------------------------------------------
    def _requires_grad(self, roles: list[str], flag: bool) -> None:
        for role in roles:
            for p in self.nets[role].parameters():
                p.requires_grad_(flag)

    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Move a batch to the device; images whose sides are not multiples of what the generators
        need (native sizes, `preprocess = "none"`) are padded by reflection, both sides alike."""
        memory = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor) and v.dim() == 4:
                v = pad_to_multiple(v, self.size_multiple)[0] if k in ("a", "b") else v
                out[k] = v.to(self.device, non_blocking=True, memory_format=memory)
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
        return DataLoader(dataset, batch_size=self.cfg.batch_size, sampler=order, collate_fn=collate,
                          num_workers=workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                          prefetch_factor=4 if workers else None, drop_last=False)

    def _set_lr(self, epoch: int) -> None:
        sched = self.recipe.schedule
        factor = 1.0
        if sched.policy == "linear" and sched.decay_epochs:
            constant = self.cfg.epochs - sched.decay_epochs
            factor = 1.0 - max(0, epoch + 1 - constant) / (sched.decay_epochs + 1)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = self.recipe.optim.lr * factor

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

    def _log(self, values: Mapping[str, float], batches_per_epoch: int) -> None:
        p = self.progress
        record = {"step": p.step, "epoch": p.epoch + min(p.batch, batches_per_epoch) / batches_per_epoch,
                  "time": round(time.time(), 3), **{k: round(v, 6) for k, v in values.items()},
                  "lr": self.optimizers["generator"].param_groups[0]["lr"],
                  "skipped_files": p.skipped_files, "skipped_steps": p.skipped_steps}
        self._last_metrics.update(values)
        self.metrics.write(record)
        if self.on_step:
            self.on_step(record)

    def _sample_batch(self) -> dict | None:
        """A fixed batch of test images (train images if there is no test split) for grids."""
        for split in ("test", "train"):
            try:
                data = self.adapter.dataset(split, train=False)
            except P2PError:
                continue
            if len(data):
                items = [data[i] for i in range(min(self.cfg.sample_count, len(data)))]
                same_size = [item for item in items if item["a"].shape == items[0]["a"].shape]
                return torch.utils.data.default_collate(same_size)
        return None

    def _end_epoch(self, samples: dict | None) -> None:
        p = self.progress
        if samples is not None and (p.epoch % self.cfg.sample_every == 0 or p.epoch == self.cfg.epochs):
            l1 = self.sample(samples, self.out_dir / "samples" / f"epoch_{p.epoch:03d}.png")
            record = {"step": p.step, "epoch": p.epoch, "time": round(time.time(), 3), "eval/l1": round(l1, 6)}
            self._last_metrics["eval/l1"] = l1
            self.metrics.write(record)
            if self.on_step:
                self.on_step(record)
        if not p.bad_steps:  # inside a streak of skipped steps the last good checkpoint stays
            self._save_epoch()

    @torch.no_grad()
    def sample(self, samples: Mapping[str, Any], path: Path) -> float:
        """Write an input | output | target grid with the paper's test protocol; return the L1."""
        batch = self._to_device(samples)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.recipe.seed)
            with protocol_mode(self.nets[self.g_roles[0]], "paper"), autocast(self.device, self.cfg.precision):
                t = self.task.step_tensors(self.nets, batch)
                images = [x.float() for x in self.task.sample_images(t)]
        save_grid(images, path)
        return float((images[1] - images[2]).abs().mean()) if len(images) >= 3 else float("nan")

    # -- checkpoints ------------------------------------------------------------------------
    def _write_recipe(self) -> None:
        import tomli_w

        (self.out_dir / "recipe.toml").write_text(tomli_w.dumps(self.recipe.to_toml_dict()))

    def _due_for_save(self) -> bool:
        steps = self.cfg.checkpoint_steps
        minutes = self.cfg.checkpoint_minutes
        if steps and self.progress.step % steps == 0:
            return True
        return bool(minutes) and time.monotonic() - self._last_save >= minutes * 60

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything needed to continue exactly: weights, optimisers, scalers, RNG, position."""
        tensors: dict[str, torch.Tensor] = {}
        for role, net in self.nets.items():
            tensors.update({f"net.{role}.{k}": v for k, v in net.state_dict().items()})
        optim_meta = {}
        for group, optimizer in self.optimizers.items():
            t, m = flat.optimizer_to_flat(group, optimizer)
            tensors.update(t)
            optim_meta[group] = m
        rng_tensors, rng_meta = flat.rng_to_flat()
        tensors.update(rng_tensors)
        p = self.progress
        from p2pcore import __version__

        metadata = {
            "recipe": self.recipe.to_toml_dict(),
            "components": self._components(),
            "p2p_version": __version__,
            "step": p.step, "epoch": p.epoch, "batch": p.batch,
            "progress": vars(p).copy(),
            "optim": optim_meta,
            "scalers": {g: flat.scaler_to_meta(s) for g, s in self.scalers.items()},
            "rng": rng_meta,
        }
        return tensors, metadata

    def _components(self) -> list[dict[str, str]]:
        r = self.recipe
        parts = [self.host.describe("task", r.task), self.host.describe("dataset", r.data)]
        parts += [self.host.describe(ref.kind, ref) for ref in r.model.values()]
        parts += [self.host.describe("loss", spec.ref()) for spec in r.loss.values()]
        return parts

    def save_latest(self) -> None:
        tensors, metadata = self.state()
        write_checkpoint(self.checkpoint_dir / "latest.safetensors", tensors, metadata)
        self._last_save = time.monotonic()

    def _save_epoch(self) -> None:
        """Write epoch_XXX once and make latest the same file (a link, else a copy), both atomically."""
        epoch = self.progress.epoch
        target = self.checkpoint_dir / f"epoch_{epoch:03d}.safetensors"
        tensors, metadata = self.state()
        write_checkpoint(target, tensors, metadata)
        link_checkpoint(target, self.checkpoint_dir / "latest.safetensors")
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
        path = latest_valid_checkpoint(self.checkpoint_dir)
        if path is None:
            raise P2PError(f"no checkpoint to resume from in {self.checkpoint_dir}", file=str(self.out_dir),
                           hint="drop --resume to start a new run, or point --out at an existing run")
        latest = self.checkpoint_dir / "latest.safetensors"
        if path != latest and latest.exists():
            warnings.warn(f"{latest} is damaged; resuming from {path.name}, the newest checkpoint that reads "
                          "cleanly", stacklevel=2)
        self.load_state(read_checkpoint(path))
        self.metrics.forget_after(self.progress.step)

    def load_state(self, ckpt: Any) -> None:
        from p2pcore.engine.checkpoint import load_network

        for role, net in self.nets.items():
            load_network(net, ckpt.prefixed(f"net.{role}"), role=role, file=str(ckpt.path))
        meta = ckpt.metadata
        for group, optimizer in self.optimizers.items():
            flat.optimizer_from_flat(group, optimizer, ckpt.tensors, meta["optim"][group])
        for group, scaler in self.scalers.items():
            if scaler.is_enabled() and group in meta.get("scalers", {}):
                scaler.load_state_dict(meta["scalers"][group])
        flat.rng_from_flat(ckpt.tensors, meta["rng"])
        self.progress = Progress(**meta["progress"])
