"""The networks made ready to train (the roles' and the task's own): initialised, or loaded from
`init.checkpoint`; activation checkpointing where the recipe asks for it; placed on the device with the loss
terms that are modules."""

from __future__ import annotations

import warnings

from torch import nn

from p2pcore.api.tasks import TaskSpec
from p2pcore.engine.build.assemble import Term
from p2pcore.engine.build.init import init_weights, load_pretrained
from p2pcore.engine.build.placement import SingleDevice
from p2pcore.engine.train.recompute import checkpoint_activations
from p2pcore.recipe import Recipe


def prepare_networks(recipe: Recipe, spec: TaskSpec, nets: dict[str, nn.Module], terms: list[Term],
                     placement: SingleDevice) -> list[str]:
    """Initialise, load and place the networks (and the loss terms that are modules); returns what was loaded
    from `init.checkpoint`, for the console (a resumed run replaces it with its checkpoint's weights)."""
    for net in nets.values():
        init_weights(net, recipe.init)
    pretrained = load_pretrained(nets, recipe.init)
    if recipe.train.activation_checkpointing:
        for name in generator_side(spec, nets):
            # a network without segments is simply not recomputed; only a recipe's table is told so
            if not checkpoint_activations(nets[name]) and name in recipe.model:
                warnings.warn(f"train.activation_checkpointing is off for model.{name}: "
                              f"{recipe.model[name].name} names no checkpoint_segments()", stacklevel=3)
    for net in nets.values():
        placement.place(net)
    for term in terms:
        if isinstance(term.loss, nn.Module):
            placement.place(term.loss)
            placement.wrap_term(term.loss)
    return pretrained


def generator_side(spec: TaskSpec, nets: dict[str, nn.Module]) -> list[str]:
    """The networks activation checkpointing applies to: generator roles, and the task's own networks that a
    generator-side player trains."""
    return [name for name in nets if (name in spec.roles and spec.roles[name].kind == "generator")
            or (name in spec.own and spec.players[spec.own[name].player].side == "generator")]
