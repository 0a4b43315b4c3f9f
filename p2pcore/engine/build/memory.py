"""The memory a recipe's networks ask for, counted on torch's meta device before anything is allocated.

Every network training builds is built on the meta device (shapes without storage, so a width of a
million filters costs nothing) and its parameters counted: each trains with its weights, its gradients
and the two moments of Adam, 16 bytes a parameter in fp32 (buffers 4). The recipe key that drives a
network's size is found the same way: each integer option the recipe sets is put back to its default
and the network counted again; the option whose default shrinks it most is the one named. Together with
the data's needs (`p2pcore.recipe.memory`) the figure is checked against the memory budget; as naming the
keys builds each network once more per option, they are named only for a recipe that does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from p2pcore.api.base import ComponentRef
from p2pcore.api.tasks import TaskContext
from p2pcore.engine.build.assemble import image_channels
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe, task_spec
from p2pcore.recipe.memory import Need, check_needs, data_needs, memory_budget

TRAINED_BYTES = 16  # a trained fp32 parameter: the weight, its gradient, Adam's two moments
BUFFER_BYTES = 4


def _count(net: nn.Module) -> int:
    """Bytes a network holds while it trains."""
    return (sum(p.numel() for p in net.parameters()) * TRAINED_BYTES
            + sum(b.numel() for b in net.buffers()) * BUFFER_BYTES)


def _built(recipe: Recipe, host: Host, model: Mapping[str, ComponentRef], channels: Mapping[str, int],
           roles: frozenset[str]) -> dict[str, nn.Module] | None:
    """The networks of `roles` built on the meta device, or None where a plugin cannot build there (it reads
    values of tensors, or files): then no estimate is made rather than a wrong one."""
    task = host.build("task", recipe.task, key="task")
    try:
        with torch.device("meta"):
            return dict(task.build_networks(TaskContext(builder=host, model=model, channels=channels, wanted=roles)))
    except P2PError:
        raise
    except Exception:  # noqa: BLE001 - a plugin that cannot build on meta is not the user's mistake
        return None


def _driver(recipe: Recipe, host: Host, role: str, channels: Mapping[str, int], size: int) -> tuple[str, Any, str]:
    """The key of `model.<role>` whose value drives the network's size, that value and how to ask for less:
    the integer option whose default shrinks the network most (the role's table where none does)."""
    ref = recipe.model[role]
    best: tuple[int, str, Any, str] = (0, f"model.{role}", ref.name, f"choose a smaller {ref.kind} for model.{role}")
    for option, value in ref.options.items():
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        try:
            smaller = host.resolve(ref.kind, {"name": ref.name, **{k: v for k, v in ref.options.items()
                                                                    if k != option}}, key=f"model.{role}")
        except P2PError:
            continue
        nets = _built(recipe, host, {**recipe.model, role: smaller}, channels, frozenset({role}))
        if nets and role in nets and size - _count(nets[role]) > best[0]:
            default = smaller.params.model_dump().get(option)
            best = (size - _count(nets[role]), f"model.{role}.{option}", value,
                    f"lower model.{role}.{option} (its default is {default})")
    return best[1:]


def _networks(recipe: Recipe, host: Host) -> tuple[dict[str, nn.Module], Mapping[str, int]]:
    """The networks of the recipe's roles built on the meta device (none where a plugin cannot build
    there), and the data's image channels they were built for."""
    spec = task_spec(recipe)
    adapter = host.build("dataset", recipe.data, key="data")
    channels = image_channels(adapter)
    roles = frozenset(role for role in recipe.model if role in spec.roles)
    nets = _built(recipe, host, recipe.model, channels, roles) or {}
    return {role: net for role, net in nets.items() if role in recipe.model}, channels


def _needs(recipe: Recipe, host: Host, nets: Mapping[str, nn.Module], channels: Mapping[str, int]) -> list[Need]:
    """What each network holds while training, naming the key that drives it."""
    needs = []
    for role, net in nets.items():
        size = _count(net)
        key, value, hint = _driver(recipe, host, role, channels, size)
        parameters = sum(p.numel() for p in net.parameters())
        needs.append(Need(size, key, value, f"the {role}'s {parameters:.3g} parameters with their gradients and "
                                            "Adam state", hint))
    return needs


def network_needs(recipe: Recipe, host: Host) -> list[Need]:
    """What the networks of the recipe's roles hold while training, each naming the key that drives it."""
    return _needs(recipe, host, *_networks(recipe, host))


def check_recipe_memory(recipe: Recipe, host: Host, *, command: str = "p2p run") -> None:
    """Refuse a recipe whose data and networks together pass the memory budget, before anything is
    allocated (`p2p run` at its start, `p2p validate --memory`). The networks are built once to count
    them (also with no budget: a network that cannot be built is refused here, before the run starts); the
    keys that drive them are looked for only when the recipe does not fit."""
    data = data_needs(recipe)
    nets, channels = _networks(recipe, host)
    budget = memory_budget()
    if budget.fits(sum(need.bytes for need in data) + sum(_count(net) for net in nets.values())):
        return
    check_needs([*data, *_needs(recipe, host, nets, channels)], budget, command=command)
