"""Assembling a run from a validated recipe: the dataset adapter, the task, the networks of the roles
a run needs, the task's own networks and the loss terms. Training assembles what it trains (every own
network); a translation only the own networks it needs. A trained run is opened from its checkpoint
through the same assembly (`p2pcore.engine.build.trained`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from p2pcore.api.losses import LossTerm
from p2pcore.api.tasks import Task, TaskContext, TaskSpec
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe, task_spec


@dataclass
class Term:
    label: str
    weight: float
    loss: LossTerm


@dataclass
class Assembly:
    """What a recipe builds: its task spec, task, dataset adapter, networks (the roles', then the task's own,
    by name) and (for training) loss terms."""

    recipe: Recipe
    spec: TaskSpec
    task: Task
    adapter: Any
    nets: dict[str, nn.Module]
    terms: list[Term]

    def size_multiple(self) -> int:
        """What image sides must be multiples of for every generator of the run to keep them."""
        return generators_multiple(self.nets, self.spec)


def generators_multiple(nets: Mapping[str, nn.Module], spec: TaskSpec) -> int:
    """What image sides must be multiples of for every generator among `nets` to keep them."""
    return max((int(getattr(net, "size_multiple", 1)) for role, net in nets.items()
                if role in spec.roles and spec.roles[role].kind == "generator"), default=1)


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
             roles: Iterable[str] | None = None, adapter: Any = None) -> Assembly:
    """Everything a recipe names, built. With `direction` (or `roles`), only what that translation (or
    those roles) run, without loss terms; otherwise what training needs: the required roles, the roles
    the loss terms' tensors need and those of every direction (for sample grids). `adapter` is the recipe's
    dataset adapter where the caller built it already (a trained run's opener builds it once, off the meta
    device, for its shape checks and its networks); otherwise it is built here."""
    spec = task_spec(recipe)
    task = host.build("task", recipe.task, key="task")
    if adapter is None:
        adapter = host.build("dataset", recipe.data, key="data")
    terms: list[Term] = []
    own: set[str] = set()  # the task's own networks this run needs
    if roles is not None:
        wanted = set(roles)
    elif direction is not None:
        wanted = set(spec.directions[check_direction(spec, direction, recipe.task.name)].roles)
        own = {name for name, network in spec.own.items() if network.translation}
    else:
        active = {label: s for label, s in recipe.loss.items() if s.weight != 0}  # weight 0 turns a term off
        if not active:
            raise P2PError("the recipe has no loss terms (of non-zero weight)", key="loss",
                           hint='add e.g. [loss.l1] name = "l1" weight = 100.0')
        terms = [Term(label, s.weight, host.build("loss", s.ref(), key=f"loss.{label}")) for label, s in active.items()]
        reads = {name for s in active.values() for name in s.ref().params.reads()}
        wanted = ({r for r, role in spec.roles.items() if role.required} | spec.roles_for(reads)
                  | {r for d in spec.directions.values() for r in d.roles})
        own = set(spec.own)
    ctx = TaskContext(builder=host, model=recipe.model, channels=image_channels(adapter), wanted=frozenset(wanted))
    nets = task.build_networks(ctx)
    unknown = set(nets) - set(spec.roles)
    if unknown:
        raise P2PError(f"task {recipe.task.name!r} built networks for roles it does not declare: "
                       f"{', '.join(sorted(unknown))}", key="task", hint="the task plugin is inconsistent")
    if own:
        nets.update(build_own(task, ctx, nets, spec, own, recipe.task.name))
    return Assembly(recipe, spec, task, adapter, nets, terms)


def build_own(task: Task, ctx: TaskContext, nets: Mapping[str, nn.Module], spec: TaskSpec, wanted: set[str],
              name: str) -> dict[str, nn.Module]:
    """The task's own networks that `wanted` names, built from the role networks (a copy of the mapping: the
    task may not add roles)."""
    built = task.build_own_networks(ctx, dict(nets))
    missing, unknown = set(spec.own) - set(built), set(built) - set(spec.own)
    if missing or unknown:
        what = "; ".join(part for part in (f"missing {', '.join(sorted(missing))}" if missing else "",
                                           f"undeclared {', '.join(sorted(unknown))}" if unknown else "") if part)
        raise P2PError(f"task {name!r} built its own networks other than it declares ({what})", key="task",
                       hint="the task plugin is inconsistent: build_own_networks returns one module for each "
                            "name of TaskSpec.own")
    return {own: built[own] for own in spec.own if own in wanted}
