"""The optimisation of a run: one Adam per player with its `[optim]` settings over its roles and the task's
own networks it trains, each side's update with the gradient scaler its optimisers share (and, across
processes, the averaging of its gradients), and the learning-rate schedule applied to them."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from p2pcore.api.tasks import TaskSpec
from p2pcore.engine.build.placement import SingleDevice
from p2pcore.engine.train.update import SideUpdate, make_adam
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe

SIDES = ("discriminator", "generator")


def player_networks(spec: TaskSpec, player: str, nets: Mapping[str, nn.Module]) -> list[str]:
    """The networks of the run a player trains: its roles, then the task's own networks it optimises."""
    names = [*spec.players[player].roles, *(name for name, own in spec.own.items() if own.player == player)]
    return [name for name in names if name in nets]


def make_optimizers(recipe: Recipe, spec: TaskSpec, nets: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
    """An optimiser for each player that has networks in the run."""
    out = {}
    for name in spec.players:
        params = [p for net in player_networks(spec, name, nets) for p in nets[net].parameters()]
        if params:
            settings = recipe.optim.for_player(name)
            out[name] = make_adam(params, lr=settings["lr"], betas=tuple(settings["betas"]),
                                  weight_decay=settings["weight_decay"])
    return out


class Optimisation:
    """The optimisers by player, the updates by side (a side without players has none), the networks each
    side trains (roles and the task's own), and the schedule of the learning rate."""

    def __init__(self, recipe: Recipe, spec: TaskSpec, nets: Mapping[str, nn.Module], host: Host,
                 placement: SingleDevice) -> None:
        self.recipe = recipe
        self.optimizers = make_optimizers(recipe, spec, nets)
        players = {side: [p for p, player in spec.players.items() if player.side == side and p in self.optimizers]
                   for side in SIDES}
        self.roles = {side: [r for p in names for r in player_networks(spec, p, nets)]
                      for side, names in players.items()}
        enabled = recipe.train.precision == "fp16"
        self.updates = {side: SideUpdate(side, {p: self.optimizers[p] for p in names},
                                         torch.amp.GradScaler(placement.device.type, enabled=enabled),
                                         placement.gradient_sync([nets[r] for r in self.roles[side]]))
                        for side, names in players.items() if names}
        self.schedule = host.build("schedule", recipe.schedule, key="schedule")

    @property
    def scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {side: update.scaler for side, update in self.updates.items()}

    def set_lr(self, position: float) -> None:
        """Each player's `[optim]` rate times the schedule's factor at `position` (in epochs, fractional when
        the schedule changes the rate per step)."""
        factor = self.schedule.factor(position, self.recipe.train.epochs)
        for player, optimizer in self.optimizers.items():
            lr = self.recipe.optim.for_player(player)["lr"] * factor
            for group in optimizer.param_groups:
                group["lr"] = lr

    @property
    def rates(self) -> dict[str, float]:
        """Each player's learning rate now, in the order of the players (the first is the log's ``lr``)."""
        return {player: optimizer.param_groups[0]["lr"] for player, optimizer in self.optimizers.items()}
