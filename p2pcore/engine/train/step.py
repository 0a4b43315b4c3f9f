"""One training iteration. The task's tensors are made lazily; the discriminator side is updated on detached
fakes (its objective halved by the loss term), then, every `n_critic` iterations, the generator side with the
discriminators frozen. The generators' forward passes are computed once and shared by both sides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from p2pcore.api.tasks import Task
from p2pcore.engine.build.assemble import Term
from p2pcore.engine.build.device import autocast
from p2pcore.engine.build.placement import SingleDevice
from p2pcore.engine.train.ema import WeightAverage
from p2pcore.engine.train.update import SideUpdate
from p2pcore.errors import P2PError
from p2pcore.recipe import TrainConfig


class TrainStep:
    """The networks as a step runs them (compiled where the recipe asks, never wrapped for data parallelism:
    the task gets the modules it built) and the updates of both sides."""

    def __init__(self, task: Task, terms: list[Term], nets: dict[str, nn.Module], updates: dict[str, SideUpdate],
                 frozen_in_g: list[str], average: WeightAverage | None, placement: SingleDevice,
                 cfg: TrainConfig) -> None:
        self.task, self.terms, self.nets, self.updates = task, terms, nets, updates
        self.frozen_in_g = frozen_in_g
        self.average = average
        self.device = placement.device
        self.n_critic, self.precision = cfg.n_critic, cfg.precision
        self.placement = placement
        self.forward_nets = placement.wrap(nets)  # across processes, every one starts from rank 0's weights
        if average is not None:
            average.reset()

    def __call__(self, batch: Mapping[str, Any], step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Step `step + 1` on a batch already on the device: one discriminator-side update, then (every n_critic
        steps) one generator-side update. Returns the detached loss values and a device flag: 1.0 when a side's
        update was skipped as non-finite. Nothing in it waits for the device."""
        logs: dict[str, torch.Tensor] = {}
        flags: list[torch.Tensor] = []
        self.placement.sync_buffers()
        with autocast(self.device, self.precision):
            base = self.task.step_tensors(self.forward_nets, batch)
        generator_due = (step + 1) % self.n_critic == 0
        if "discriminator" in self.updates:
            self._requires_grad(self.frozen_in_g, True)
            parts = self._losses("discriminator", base)
            flags.append(self.updates["discriminator"](parts, dict.fromkeys(parts, 1.0), logs))
            self.task.after_step("discriminator", self.nets, step)
        if "generator" in self.updates and (generator_due or "discriminator" not in self.updates):
            self._requires_grad(self.frozen_in_g, False)
            parts = self._losses("generator", base)
            flags.append(self.updates["generator"](parts, {t.label: t.weight for t in self.terms}, logs))
            self._requires_grad(self.frozen_in_g, True)
            if self.average is not None:
                self.average.update()
            self.task.after_step("generator", self.nets, step)
        flags = [f for f in flags if f is not None]
        bad = torch.stack(flags).amax() if flags else torch.zeros((), device=self.device)
        return logs, bad

    def _losses(self, side: str, base: Any) -> dict[str, torch.Tensor]:
        """Each term's contribution to one side, computed in that side's view of the step tensors."""
        with autocast(self.device, self.precision):
            phase = self.task.phase_tensors(side, self.forward_nets, base)
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

    def _requires_grad(self, roles: list[str], flag: bool) -> None:
        for role in roles:
            for p in self.nets[role].parameters():
                p.requires_grad_(flag)
