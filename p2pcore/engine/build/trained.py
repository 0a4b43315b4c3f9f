"""Opening a trained run: the one way `p2p translate`, `p2p eval`, `p2p export` and `p2pcore.api.load_trained`
rebuild networks from a checkpoint, so that they check, build and load alike.

checkpoint header -> its components checked installed -> its recipe validated as inference reads it (without
loss terms and metrics) -> every tensor of the file compared with what that recipe builds (its networks,
their averages and optimiser state, on the meta device) before any is read -> the networks of a direction or
of named roles, built and loaded (the weight average where the file keeps one, else the last weights)
-> on the device, with the dataset adapter and the test-time protocol they run under. The adapter is built
once, with the recipe validated, and serves the comparisons and the networks alike. What each caller does
beyond that (styles, tiling, metrics, tracing) stays with the caller.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from p2pcore.api.tasks import Task, TaskContext, TaskSpec
from p2pcore.checkpoint.files import Checkpoint, load_network
from p2pcore.checkpoint.format import Header, read_header
from p2pcore.checkpoint.layout import Layout, read_checked, run_layout
from p2pcore.engine.build.assemble import assemble, build_own, check_direction, generators_multiple, image_channels
from p2pcore.engine.build.device import resolve_device
from p2pcore.engine.infer.protocols import Protocol, nets_in_protocol
from p2pcore.engine.train.optimisation import player_networks
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe, task_spec, validate_recipe

# The kinds a checkpoint's networks are rebuilt from: each recorded one must be installed to open it.
NEEDED_KINDS = ("task", "dataset", "generator", "discriminator", "norm")


@dataclass
class TrainedRun:
    """A run rebuilt from its checkpoint: its validated recipe, task, dataset adapter and the networks asked
    for, loaded with the checkpoint's weights and on `device`.

    `direction` is the translation direction whose networks these are (None when roles were named);
    `protocol` is the test-time protocol they run under (None: left as the task built them), entered with
    :meth:`in_protocol`."""

    recipe: Recipe
    task: Task
    adapter: Any
    nets: dict[str, nn.Module]
    spec: TaskSpec
    checkpoint: Checkpoint
    direction: str | None
    protocol: Protocol | None
    device: torch.device

    @property
    def file(self) -> str:
        return str(self.checkpoint.path)

    @property
    def averaged(self) -> bool:
        """Whether the networks hold the checkpoint's weight average (`train.ema`) rather than the last weights."""
        return any(name.startswith("ema.") for name in self.checkpoint.tensors)

    @property
    def channels(self) -> dict[str, int]:
        """Channels of each image key the adapter reads and writes."""
        return image_channels(self.adapter)

    def size_multiple(self) -> int:
        """What image sides must be multiples of for every generator opened to keep them."""
        return generators_multiple(self.nets, self.spec)

    @contextlib.contextmanager
    def in_protocol(self) -> Iterator[None]:
        """Every network in the run's protocol for the duration; modes and batch-norm counters are restored
        after, so the paper protocol leaves the file's statistics as they were."""
        if self.protocol is None:
            yield
            return
        with nets_in_protocol(self.nets, self.protocol):
            yield


@dataclass
class TrainedCheckpoint:
    """A checkpoint read, its components found installed and its recipe validated for inference: what a
    caller may consult (its `[eval]`, its directions) before choosing the networks to :meth:`open`. `adapter`
    is the recipe's dataset adapter, built once: the networks opened are built for it and run with it."""

    checkpoint: Checkpoint
    recipe: Recipe
    host: Host
    adapter: Any

    @property
    def file(self) -> str:
        return str(self.checkpoint.path)

    @functools.cached_property
    def spec(self) -> TaskSpec:
        return task_spec(self.recipe)

    def open(self, *, direction: str | None = None, roles: Iterable[str] | None = None,
             protocol: Protocol | None = None, device: str | torch.device = "cpu") -> TrainedRun:
        """The networks of `direction` (the task's first unless named) or of `roles`, compared with the file's
        tensors on the meta device before anything is allocated, then built, loaded with the weight average
        where the checkpoint keeps one and moved to `device` (``auto``, ``cpu``, ``cuda:N``)."""
        target = resolve_device(device, key="--device") if isinstance(device, str) else device
        roles = list(roles) if roles is not None else None
        try:
            if roles is None:  # a direction's networks: the task's first direction unless one is named
                direction = check_direction(self.spec, direction, self.recipe.task.name)
            for role in roles or ():
                if role not in self.recipe.model:
                    raise P2PError(f"the checkpoint's recipe has no model.{role}", key=f"model.{role}",
                                   hint=f"its networks: {', '.join(self.recipe.model)}")
            with torch.device("meta"):  # shapes only: a recipe that disagrees with the tensors allocates nothing
                check_shapes(assemble(self.recipe, self.host, direction=direction, roles=roles,
                                      adapter=self.adapter).nets, self.checkpoint)
            run = assemble(self.recipe, self.host, direction=direction, roles=roles, adapter=self.adapter)
        except P2PError as exc:
            raise exc.with_location(file=self.file) from None
        for role, net in run.nets.items():
            load_network(net, self.checkpoint.prefixed(f"ema.{role}") or self.checkpoint.prefixed(f"net.{role}"),
                         role=role, file=self.file)
            net.to(target)
        return TrainedRun(run.recipe, run.task, run.adapter, run.nets, run.spec, self.checkpoint,
                          direction if roles is None else None, protocol, target)


def open_checkpoint(checkpoint: str | Path, host: Host, *, data: Mapping[str, Any] | None = None
                    ) -> TrainedCheckpoint:
    """Read a checkpoint, check that the task, dataset and network components it was made with are installed
    (a missing one names the distribution to install) and validate its recipe as inference reads it.

    `data` updates the recipe's ``[data]`` table (``{"root": ...}`` reads the dataset elsewhere), or replaces
    it when it names another adapter; the recorded adapter need not be installed then. Every tensor of the file
    is compared with what the recipe builds before any is read."""
    header = read_header(checkpoint)
    file = header.path
    recorded = dict(header.meta.recipe)
    replaced = bool(data) and isinstance(recorded.get("data"), dict) and \
        data.get("name", recorded["data"].get("name")) != recorded["data"].get("name")
    host.check_installed(header.meta.components, file=file,
                         kinds=[kind for kind in NEEDED_KINDS if not (replaced and kind == "dataset")])
    if not all(key in recorded for key in ("task", "model", "data")):
        raise P2PError("the checkpoint records no recipe to rebuild its networks from", file=file,
                       hint="use a checkpoint written by `p2p run` or `p2p import`")
    if data and not replaced and not isinstance(recorded["data"], dict):
        raise P2PError("the checkpoint's recipe has no [data] table", file=file, key="recipe.data",
                       hint="the file is damaged or was altered; use another checkpoint")
    if data:
        recorded["data"] = dict(data) if replaced else {**recorded["data"], **data}
    try:
        recipe = validate_recipe(recorded, host, inference=True)
        adapter = host.build("dataset", recipe.data, key="data")  # off the meta device: the run reads with it
        layout = file_layout(recipe, host, header, adapter)
    except P2PError as exc:
        raise exc.with_location(file=file) from None
    return TrainedCheckpoint(read_checked(header, layout), recipe, host, adapter)


def file_layout(recipe: Recipe, host: Host, header: Header, adapter: Any) -> Layout:
    """What the recipe builds for the roles the file holds, on the meta device, with the recipe's dataset
    `adapter`: their networks (and averages) and the optimiser state of each player training them, as training
    writes it."""
    spec = task_spec(recipe)
    held = sorted({name.split(".")[1] for name in header.tensors if name.startswith(("net.", "ema."))})
    unknown = [role for role in held if role not in spec.roles and role not in spec.own]
    if unknown:
        raise P2PError(f"the checkpoint holds networks for {unknown[0]!r}, which task {recipe.task.name!r} does not "
                       "build", key=f"tensors.net.{unknown[0]}", hint="the file is damaged or was altered; use "
                                                                      "another checkpoint")
    roles = [role for role in held if role in spec.roles]
    with torch.device("meta"):  # shapes only: nothing is allocated
        run = assemble(recipe, host, roles=roles, adapter=adapter)
        nets = dict(run.nets)
        own = {role for role in held if role in spec.own}
        if own:
            ctx = TaskContext(builder=host, model=recipe.model, channels=image_channels(run.adapter),
                              wanted=frozenset(roles))
            nets.update(build_own(run.task, ctx, nets, spec, own, recipe.task.name))
    saved = header.meta.optim or {}
    optimised = {player: [p for net in player_networks(spec, player, nets) for p in nets[net].parameters()]
                 for player in spec.players if player in saved}
    return run_layout(nets, {player: params for player, params in optimised.items() if params}, run.task)


def open_trained(checkpoint: str | Path, host: Host, *, direction: str | None = None,
                 roles: Iterable[str] | None = None, protocol: Protocol | None = None,
                 data: Mapping[str, Any] | None = None, device: str | torch.device = "cpu") -> TrainedRun:
    """A checkpoint's run, ready for inference: :func:`open_checkpoint`, then :meth:`TrainedCheckpoint.open`."""
    return open_checkpoint(checkpoint, host, data=data).open(direction=direction, roles=roles, protocol=protocol,
                                                              device=device)


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
