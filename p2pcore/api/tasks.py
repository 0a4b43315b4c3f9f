"""The task contract: the networks of a translation method, its players, the tensors of a step and
its translation directions, declared without torch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from p2pcore.api.base import Builder, ComponentRef, Params
from p2pcore.api.tensors import Tensors
from p2pcore.errors import P2PError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

Side = Literal["generator", "discriminator"]


@dataclass(frozen=True)
class Role:
    """A network a task trains, written in a recipe as ``[model.<role>]``."""

    kind: str
    required: bool = True
    summary: str = ""


@dataclass(frozen=True)
class Player:
    """An optimiser group: the roles it updates and the side of the game it plays. Its optimiser
    settings are ``[optim.<player>]`` in a recipe, defaulting to the shared ``[optim]`` ones."""

    side: Side
    roles: tuple[str, ...]


@dataclass(frozen=True)
class OwnNetwork:
    """A trainable network a task builds for itself rather than a recipe role (CUT's projection heads).

    It is never a ``[model.*]`` table: the task builds it in :meth:`Task.build_own_networks` from the role
    networks. The engine places, initialises (``[init]``), optimises (with its `player`'s optimiser) and
    checkpoints it (``net.<name>.*``) like a role, and resumes it; it is built only when training unless
    `translation` says translating needs it, and only then is it loaded and exported with a direction."""

    player: str
    summary: str = ""
    translation: bool = False


@dataclass(frozen=True)
class Direction:
    """A translation the task offers (``p2p translate --direction``): the batch image key it reads,
    the image key its output looks like, the roles it runs, the step tensor holding its output and,
    for paired tasks, the step tensor it should equal (what evaluation compares)."""

    input: str
    output: str
    roles: tuple[str, ...]
    tensor: str
    target: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task declares, without torch.

    `roles`: networks by recipe role; `players`: optimiser groups by name; `images`: batch keys
    that are images (padded, collated and shown alike); `tensors`: every step tensor it provides
    to loss terms, each with the roles needed to compute it; `visuals`: the tensors of a sample
    grid, in column order, each with the image key it looks like; `directions`: by name, the
    first being the default; `own`: the trainable networks the task builds itself, by name
    (:class:`OwnNetwork`), each trained by one of its players.
    """

    roles: Mapping[str, Role]
    players: Mapping[str, Player]
    tensors: Mapping[str, tuple[str, ...]]
    directions: Mapping[str, Direction]
    visuals: Mapping[str, str] = field(default_factory=dict)
    images: tuple[str, ...] = ("a", "b")
    own: Mapping[str, OwnNetwork] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """A declaration that contradicts itself is the plugin's mistake: say which name is off."""
        roles = set(self.roles)
        named = [(f"player {p!r}", r) for p, player in self.players.items() for r in player.roles]
        named += [(f"tensor {t!r}", r) for t, needs in self.tensors.items() for r in needs]
        named += [(f"direction {d!r}", r) for d, direction in self.directions.items() for r in direction.roles]
        for where, role in named:
            if role not in roles:
                raise ValueError(f"TaskSpec: {where} names role {role!r}, which is not among its roles")
        for where, name in [*((f"direction {d!r}", x.tensor) for d, x in self.directions.items()),
                            *((f"direction {d!r}", x.target) for d, x in self.directions.items() if x.target),
                            *(("visuals", v) for v in self.visuals)]:
            if name not in self.tensors:
                raise ValueError(f"TaskSpec: {where} names tensor {name!r}, which is not among its tensors")
        if not self.directions:
            raise ValueError("TaskSpec: a task offers at least one direction")
        for name, own in self.own.items():
            if name in roles:
                raise ValueError(f"TaskSpec: own network {name!r} has the name of a role")
            if own.player not in self.players:
                raise ValueError(f"TaskSpec: own network {name!r} names player {own.player!r}, "
                                 "which is not among its players")

    def roles_for(self, tensors: Iterable[str]) -> set[str]:
        """The roles that computing these tensors needs."""
        return {role for name in tensors for role in self.tensors.get(name, ())}


@dataclass(frozen=True)
class RecipeTerm:
    """One term of a recipe's objective as a task's check sees it: the loss resolved (its `name` and
    validated `params`, e.g. the tensors it `reads()`) and its weight."""

    ref: ComponentRef
    weight: float

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def params(self) -> Any:
        return self.ref.params


@dataclass(frozen=True)
class RecipeView:
    """A validated recipe as :meth:`TaskParams.check_recipe` sees it: read-only and torch-free.

    `task`: the task's reference (its `params` are the parameters checking); `spec`: what they declare;
    `model`: each role's resolved reference (`model["generator"].name`, `.params.n_blocks`); `facts`: by
    role, what its component derives from its parameters without torch (``size_multiple``, what
    ``p2p show`` prints); `loss`: the terms that are on (weight not 0) by label; `data`: the dataset's
    reference; `channels`: the channels of each image key of the dataset's items as its parameters declare
    them (``{"a": 1, "b": 3}``; :meth:`DatasetParams.image_channels`), None when they do not say. An image
    key of ``spec.images`` missing from `channels` is refused after the task's check, which may refuse it
    first with its own words.
    """

    task: ComponentRef
    spec: TaskSpec
    model: Mapping[str, ComponentRef]
    facts: Mapping[str, Mapping[str, Any]]
    loss: Mapping[str, RecipeTerm]
    data: ComponentRef
    channels: Mapping[str, int] | None

    def __post_init__(self) -> None:
        for name in ("model", "facts", "loss", "channels"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    def terms(self, loss: str) -> dict[str, RecipeTerm]:
        """The terms that are on and use the registered loss `loss`, by label (``view.terms("l1")``)."""
        return {label: term for label, term in self.loss.items() if term.name == loss}

    def channels_key(self, image: str) -> str:
        """The recipe key that sets an image key's channel count (``data.a.channels``), for errors; ``data``
        when the dataset fixes it (:meth:`DatasetParams.image_channel_keys`)."""
        own = self.data.params.image_channel_keys().get(image)
        return f"data.{own}" if own else "data"


class TaskParams(Params):
    """Base of every task's parameters: `declare` says what the task needs and provides.

    Two checks run during recipe validation, without torch, and raise :class:`P2PError` with the recipe
    key at fault (``task.layers``, ``loss``, ``data.a.channels``):

    - `check(model)` may reject a model that the task cannot train (for example a conditional
      discriminator where the task judges single images); it runs whenever a recipe is validated, also
      when a checkpoint's recipe is read to translate.
    - `check_recipe(view)` sees the whole resolved recipe (:class:`RecipeView`: roles with their
      parameters, the loss terms that are on, the dataset's channels) and may reject what the task cannot
      train: a loss term it needs, channel counts it cannot handle, layers its generator does not have.
      It runs after `check` when a recipe is validated for training (``p2p validate``, ``p2p run``).

    `default_loss` gives loss terms the task supplies when a recipe does not override them.
    """

    def declare(self) -> TaskSpec:
        raise NotImplementedError(f"{type(self).__name__} must define declare()")

    def check(self, model: Mapping[str, ComponentRef]) -> None:
        return None

    def check_recipe(self, view: RecipeView) -> None:
        return None

    def default_loss(self) -> Mapping[str, Mapping[str, Any]]:
        """Loss terms by label, as recipe tables (``{"nce": {"name": "patch_nce", "weight": 1.0}}``): the
        recipe's ``[loss.<label>]`` tables merge over them key by key (one naming another loss replaces the
        term), weight 0 turns one off and ``unset = ["loss.<label>"]`` removes it."""
        return {}


@dataclass
class TaskContext:
    """What a task needs to build its networks: the recipe's roles (resolved), the channels of
    each batch image key, and which roles this run needs (a translation needs fewer than training)."""

    builder: Builder
    model: Mapping[str, ComponentRef]
    channels: Mapping[str, int]
    wanted: frozenset[str]

    def wants(self, role: str) -> bool:
        return role in self.wanted and role in self.model

    def build(self, role: str, *, in_channels: int, out_channels: int | None = None) -> Any:
        """Build the network of a role, with the channel counts the task derives."""
        return self.builder.build(self.model[role].kind, self.model[role], in_channels=in_channels,
                                  out_channels=out_channels, key=f"model.{role}")


class Task:
    """Base class of tasks: the networks of a translation method and the tensors a step needs.

    The engine owns every optimiser step; a task only says how tensors are computed. Its own state
    (an image pool) goes into every checkpoint through `state_dict`: a flat dict whose values are each a
    tensor (stored as checkpoint tensor ``task.<key>``, given back on the run's device) or a JSON-able value
    (numbers, strings, booleans, None, lists and dicts of them; no tensors nested inside). A resumed run
    hands it back to `load_state_dict` before its first step. Networks (own ones included), optimisers
    and random streams are checkpointed by the engine, not here.

    The `nets` a task receives (roles and its own networks, by name) are the underlying modules, also
    under ``p2p run --nproc``, where the engine keeps gradients in step across processes itself: a
    generator's own methods (``feature_maps``, ``taps``) are always reachable.
    """

    def build_networks(self, ctx: TaskContext) -> dict[str, nn.Module]:
        raise NotImplementedError

    def build_own_networks(self, ctx: TaskContext, nets: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        """Called after build_networks with the role networks built (underlying modules), only when
        training (and when translating, for own networks with translation=True); returns a module
        for each name of TaskSpec.own. Default: {}."""
        return {}

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        """The tensors shared by both sides of one step, from the batch (images on the device)."""
        raise NotImplementedError

    def phase_tensors(self, side: Side, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        """The view of one side's update: a discriminator side sees detached fakes."""
        return base

    def translate(self, direction: str, nets: Mapping[str, nn.Module], image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_step(self, side: Side, nets: Mapping[str, nn.Module], step: int) -> None:
        """Called after each update of a side (post-step hook)."""

    def configure_translation(self, style: str | None, styles: str | None) -> None:
        """Choose what multimodal tasks feed beside the input at translation time (`p2p translate --style
        STYLE --styles FILE`, e.g. pix2pixHD's clustered instance features). A task without styles refuses."""
        if style is not None or styles is not None:
            raise P2PError(f"{type(self).__name__} translates without styles", key="--style",
                           hint="drop --style and --styles")

    def start_epoch(self, epoch: int, nets: Mapping[str, nn.Module]) -> None:
        """Called before each epoch's first step, and again for the epoch a resumed run continues:
        where a task switches what it trains by epoch (freezing a role for the first epochs)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state:
            raise P2PError(f"{type(self).__name__} keeps no state, but the checkpoint has some",
                           hint="the checkpoint was written by another version of this task")

