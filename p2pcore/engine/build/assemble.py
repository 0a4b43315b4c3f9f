"""Assembling a run from a validated recipe: the dataset adapter, the task, the networks of the roles
a run needs and the loss terms. Shared by training, translation and export."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from p2pcore.api.losses import LossTerm

from p2pcore.api.tasks import Task, TaskContext, TaskSpec
from p2pcore.checkpoint.files import Checkpoint, load_network
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe, task_spec, validate_recipe


@dataclass
class Term:
    label: str
    weight: float
    loss: LossTerm


@dataclass
class Assembly:
    recipe: Recipe
    spec: TaskSpec
    task: Task
    adapter: Any
    nets: dict[str, nn.Module]
    terms: list[Term]

    def roles_of_kind(self, kind: str) -> list[str]:
        return [role for role in self.nets if self.spec.roles[role].kind == kind]

    def size_multiple(self) -> int:
        """What image sides must be multiples of for every generator of the run to keep them."""
        return max((int(getattr(self.nets[r], "size_multiple", 1)) for r in self.roles_of_kind("generator")),
                   default=1)


def image_channels(adapter: Any) -> dict[str, int]:
    """Channels of each batch image key: a and b, and whatever else the adapter declares."""
    return {"a": adapter.a_channels, "b": adapter.b_channels, **getattr(adapter, "channels", {})}


def check_direction(spec: TaskSpec, direction: str | None, task: str) -> str:
    if direction is None:
        return next(iter(spec.directions))
    if direction not in spec.directions:
        raise P2PError(f"task {task!r} does not translate {direction!r}", key="--direction",
                       hint=f"it offers: {', '.join(spec.directions)}")
    return direction


def assemble(recipe: Recipe, host: Host, *, direction: str | None = None,
             roles: Iterable[str] | None = None) -> Assembly:
    """Everything a recipe names, built. With `direction` (or `roles`), only what that translation (or
    those roles) run, without loss terms; otherwise what training needs: the required roles, the roles
    the loss terms' tensors need and those of every direction (for sample grids)."""
    spec = task_spec(recipe)
    task = host.build("task", recipe.task, key="task")
    adapter = host.build("dataset", recipe.data, key="data")
    terms: list[Term] = []
    if roles is not None:
        wanted = set(roles)
    elif direction is not None:
        wanted = set(spec.directions[check_direction(spec, direction, recipe.task.name)].roles)
    else:
        active = {label: s for label, s in recipe.loss.items() if s.weight != 0}  # weight 0 turns a term off
        if not active:
            raise P2PError("the recipe has no loss terms (of non-zero weight)", key="loss",
                           hint='add e.g. [loss.l1] name = "l1" weight = 100.0')
        terms = [Term(label, s.weight, host.build("loss", s.ref(), key=f"loss.{label}")) for label, s in active.items()]
        reads = {name for s in active.values() for name in s.ref().params.reads()}
        wanted = ({r for r, role in spec.roles.items() if role.required} | spec.roles_for(reads)
                  | {r for d in spec.directions.values() for r in d.roles})
    ctx = TaskContext(builder=host, model=recipe.model, channels=image_channels(adapter), wanted=frozenset(wanted))
    nets = task.build_networks(ctx)
    unknown = set(nets) - set(spec.roles)
    if unknown:
        raise P2PError(f"task {recipe.task.name!r} built networks for roles it does not declare: "
                       f"{', '.join(sorted(unknown))}", key="task", hint="the task plugin is inconsistent")
    return Assembly(recipe, spec, task, adapter, nets, terms)


def check_shapes(nets: Mapping[str, nn.Module], ckpt: Checkpoint) -> None:
    """The networks the checkpoint's recipe builds must have exactly the tensors the file holds."""
    for role, net in nets.items():
        held = ckpt.header.shapes(f"ema.{role}") or ckpt.header.shapes(f"net.{role}")
        built = {key: tuple(value.shape) for key, value in net.state_dict().items()}
        if held == built:
            continue
        key = sorted(k for k in held.keys() | built.keys() if held.get(k) != built.get(k))[0]
        raise P2PError(f"the checkpoint's recipe does not match its tensors: {role} {key} is "
                       f"{held.get(key, 'absent')} in the file but {built.get(key, 'absent')} in the recipe",
                       key=f"model.{role}", hint="the file is damaged or was altered; use another checkpoint")


def assemble_trained(ckpt: Checkpoint, host: Host, *, direction: str | None = None,
                     roles: Iterable[str] | None = None, data: Mapping[str, Any] | None = None) -> Assembly:
    """A checkpoint's run rebuilt for inference: its recipe validated without its loss terms; the networks
    of a direction (the task's first unless named) or of `roles`, compared with the file's tensors on the
    meta device before anything is allocated, then built and loaded with the weight average where the
    checkpoint keeps one. `data` updates the recipe's [data] table, or replaces it when it names another
    adapter."""
    file = str(ckpt.path)
    if not all(key in ckpt.recipe for key in ("task", "model", "data")):
        raise P2PError("the checkpoint records no recipe to rebuild its networks from", file=file,
                       hint="use a checkpoint written by `p2p run` or `p2p import`")
    recorded = dict(ckpt.recipe)
    if data:
        same = data.get("name", recorded["data"].get("name")) == recorded["data"].get("name")
        recorded["data"] = {**recorded["data"], **data} if same else dict(data)
    try:
        recipe = validate_recipe(recorded, host, inference=True)
        if roles is None:  # a direction's networks: the task's first direction unless one is named
            direction = check_direction(task_spec(recipe), direction, recipe.task.name)
        for role in roles or ():
            if role not in recipe.model:
                raise P2PError(f"the checkpoint's recipe has no model.{role}", key=f"model.{role}",
                               hint=f"its networks: {', '.join(recipe.model)}")
        with torch.device("meta"):  # shapes only: a recipe that disagrees with the tensors allocates nothing
            check_shapes(assemble(recipe, host, direction=direction, roles=roles).nets, ckpt)
        run = assemble(recipe, host, direction=direction, roles=roles)
    except P2PError as exc:
        raise exc.with_location(file=file) from None
    for role, net in run.nets.items():
        load_network(net, ckpt.prefixed(f"ema.{role}") or ckpt.prefixed(f"net.{role}"), role=role, file=file)
    return run
