"""The public face of p2p for plugin authors: the only module a plugin imports from the core.

Importing this module does not import torch, so ``p2p --help`` and recipe validation stay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, get_args, runtime_checkable

import pluggy
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_serializer,
    model_validator,
)

from p2pcore.datareport import DataReport
from p2pcore.errors import P2PError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from p2pcore.imageio import (
        IMAGE_SUFFIXES,
        ImageInfo,
        Normalization,
        load_image,
        match_channels,
        probe_image,
        read_image,
        to_unit,
        write_image,
        write_suffixes,
    )
    from p2pcore.jitter import finish_image, jitter, make_jitter, prepare_image

__all__ = [
    "hookimpl", "Params", "Field", "ComponentRef", "NormRef", "GeneratorRef", "DiscriminatorRef",
    "LossRef", "DatasetRef", "TaskRef", "ScheduleRef", "Builder", "BuildContext", "NormFactory", "Tensors",
    "LossParams", "LossTerm", "Side", "Role", "Player", "Direction", "TaskSpec", "TaskParams", "TaskContext",
    "Task", "ScheduleParams", "Schedule", "DatasetAdapter", "P2PError", "did_you_mean", "IMAGE_SUFFIXES",
    "ImageInfo", "Normalization", "load_image", "match_channels", "probe_image", "read_image", "to_unit", "write_image",
    "TrainedRun", "load_trained", "MetricRef", "SegmenterRef", "MetricParams", "Comparison", "Metric", "Segmenter",
    "API_VERSION", "Register", "DiscriminatorParams", "Generator", "Discriminator", "DataReport", "BATCH_KEYS",
    "Preprocess", "Interpolation", "make_jitter", "jitter", "prepare_image", "finish_image", "write_suffixes",
    "load_host", "write_weights", "read_weights", "load_weights", "CITYSCAPES_CLASSES", "CITYSCAPES_COLOURS",
    "CITYSCAPES_VOID_COLOURS",
]

hookimpl = pluggy.HookimplMarker("p2p")

API_VERSION = "1.2"
"""The version of the contract between p2p and its plugins: this module and the hooks of
:mod:`p2pcore.hookspecs`. The major number changes when something a plugin may rely on changes shape
or goes away, the minor one when something is added. A plugin declares the versions it supports in its
entry module, as a version specifier read without importing it: ``P2P_API = ">=1,<2"``. A plugin whose
range excludes this version is not loaded (``p2p plugins`` shows it as incompatible, with its range);
one that declares no range is loaded, with a warning in ``p2p plugins``.

1.1 added the dataset adapter's optional ``input_suffixes``/``output_suffixes`` (``p2p translate`` reads and
writes the files an adapter declares) and :func:`write_suffixes`: an adapter relying on them declares
``P2P_API = ">=1.1,<2"``. 1.2 added the Cityscapes label set (:data:`CITYSCAPES_CLASSES`,
:data:`CITYSCAPES_COLOURS`, :data:`CITYSCAPES_VOID_COLOURS`)."""


class Checked(BaseModel):
    """Unknown keys are errors, values immutable, NaN and infinity refused, and `true` is not a number."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        """`epochs = true` is a mistake, not 1: a boolean given for a number field is passed on as the
        word it was, which the field then refuses with its own message."""
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name) if isinstance(value, bool) else None
            if field is not None:
                types = (field.annotation, *get_args(field.annotation))
                if bool not in types and any(t in (int, float) for t in types):
                    out[name] = str(value).lower()
        return out


class Params(Checked):
    """Base class of every component's parameters: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


class ComponentRef(BaseModel):
    """A reference to a registered component: its kind, its name and the options passed to it.

    Written in a recipe either as a name (``norm = "instance"``) or as a table
    (``norm = { name = "batch", momentum = 0.05 }``).
    """

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    _params: Any = PrivateAttr(default=None)

    @property
    def params(self) -> Any:
        """The validated parameters, once the host has resolved this reference (else None).

        Nested references among them are resolved too; builders receive exactly these."""
        return self._params

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ComponentRef):
            return NotImplemented
        return (self.kind, self.name, self.options) == (other.kind, other.name, other.options)

    def __hash__(self) -> int:
        return hash((self.kind, self.name))

    @model_serializer
    def _as_recipe_value(self) -> str | dict[str, Any]:
        return {"name": self.name, **self.options} if self.options else self.name

    def as_table(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    @classmethod
    def coerce(cls, kind: str, value: Any) -> ComponentRef:
        if isinstance(value, ComponentRef):
            return value if value.kind == kind else cls(kind=kind, name=value.name, options=value.options)
        if isinstance(value, str):
            return cls(kind=kind, name=value)
        if isinstance(value, Mapping):
            options = dict(value)
            name = options.pop("name", None)
            if not isinstance(name, str):
                raise ValueError(f"a {kind} table needs a `name` key naming a registered {kind}")
            return cls(kind=kind, name=name, options=options)
        raise ValueError(f"expected the name of a {kind} or a table with `name`, got {value!r}")


def _ref(kind: str) -> Any:
    schema = {
        "description": f"a registered {kind}: its name, or a table with `name` and its parameters "
                       f"(see `p2p list {kind}`)",
        "anyOf": [{"type": "string"},
                  {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}],
    }
    return Annotated[ComponentRef, BeforeValidator(lambda v: ComponentRef.coerce(kind, v)),
                     WithJsonSchema(schema)]


NormRef = _ref("norm")
GeneratorRef = _ref("generator")
DiscriminatorRef = _ref("discriminator")
LossRef = _ref("loss")
DatasetRef = _ref("dataset")
TaskRef = _ref("task")
ScheduleRef = _ref("schedule")
MetricRef = _ref("metric")
SegmenterRef = _ref("segmenter")


class Builder(Protocol):
    """What builds components: the plugin host. Builders reach it only through their context."""

    def build(self, kind: str, spec: Any, *, in_channels: int | None = None, out_channels: int | None = None,
              key: str = "", facts: Mapping[str, Any] | None = None) -> Any: ...


class Register(Protocol):
    """The callable each ``p2p_register_*`` hook receives, bound to the plugin and the kind, so every
    component records which distribution it came from.

    `build(params, ctx)` makes the component when a recipe asks for it (import torch inside it); `params` is
    the pydantic model of its parameters (a subclass of the kind's base where it has one: `LossParams`,
    `TaskParams`, `ScheduleParams`, `MetricParams`); `aliases` are further names; `summary` replaces the first
    line of `build`'s docstring in ``p2p list``; ``facts(params) -> dict`` derives figures ``p2p show``
    prints (a receptive field), without torch."""

    def __call__(self, name: str, build: Callable[[Any, BuildContext], Any], *, params: type[BaseModel] = ...,
                 aliases: Iterable[str] = (), summary: str | None = None,
                 facts: Callable[[Any], Mapping[str, Any]] | None = None) -> None: ...


@dataclass
class BuildContext:
    """Facts derived by p2p (never typed by users) and the way to build sub-components.

    `in_channels`/`out_channels` come from the dataset and the task; `key` is the recipe path of the
    component being built, so errors can point at it.
    """

    builder: Builder
    in_channels: int | None = None
    out_channels: int | None = None
    key: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def build(self, ref: ComponentRef, *, in_channels: int | None = None, out_channels: int | None = None,
              key: str | None = None) -> Any:
        """Build a referenced component, by default with this context's channel counts."""
        return self.builder.build(ref.kind, ref,
                                  in_channels=self.in_channels if in_channels is None else in_channels,
                                  out_channels=self.out_channels if out_channels is None else out_channels,
                                  key=key or self.key, facts=self.facts)


@runtime_checkable
class NormFactory(Protocol):
    """Makes a normalisation layer for a number of channels.

    `conv_bias` says whether the convolution before it should keep a bias (a batch norm with
    an affine shift makes that bias redundant).
    """

    conv_bias: bool

    def __call__(self, channels: int) -> nn.Module: ...


class Tensors:
    """Named tensors of one training step, each computed on first use and then kept.

    A task declares producers (``"fake_b": lambda t: G(t["real_a"])``); loss terms read names.
    Nothing is computed that no term asks for, and nothing twice. `extend` makes a phase view
    (the discriminator or generator step) that shares what was already computed in its parent.
    """

    def __init__(self, producers: Mapping[str, Callable[[Tensors], Any]] | None = None,
                 values: Mapping[str, Any] | None = None, parent: Tensors | None = None) -> None:
        self._producers = dict(producers or {})
        self._values: dict[str, Any] = dict(values or {})
        self._parent = parent

    def extend(self, producers: Mapping[str, Callable[[Tensors], Any]]) -> Tensors:
        return Tensors(producers, parent=self)

    def names(self) -> set[str]:
        own = set(self._producers) | set(self._values)
        return own | (self._parent.names() if self._parent else set())

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def __getitem__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if name in self._producers:
            self._values[name] = self._producers[name](self)
            return self._values[name]
        if self._parent is not None and name in self._parent:
            return self._parent[name]
        guess = did_you_mean(name, self.names())
        raise P2PError(f"this task provides no tensor named {name!r}",
                       hint=(f"did you mean {guess!r}? " if guess else "")
                       + f"available: {', '.join(sorted(self.names()))}")


# -- generators and discriminators ------------------------------------------------------------------

@runtime_checkable
class Generator(Protocol):
    """What a generator's `build` returns: an ``nn.Module`` from N x ctx.in_channels x H x W to
    N x ctx.out_channels x H x W in [-1, 1] (it ends in Tanh). Inputs whose sides are multiples of
    `size_multiple` keep their size; the engine pads other inputs up to it and crops the output back.

    Generators share no parameters beyond `Params`: their widths and norms differ in defaults and meaning.

    Optional: ``checkpoint_segments()`` returning the submodules (blocks that take and return one tensor)
    whose activations ``train.activation_checkpointing`` recomputes in the backward pass instead of keeping."""

    size_multiple: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class DiscriminatorParams(Params):
    """The fields every discriminator has, so that tasks and recipes can rely on them: a task judging
    single images refuses `conditional = true`, and `spectral_norm` is one switch for any architecture."""

    conditional: bool = Field(True, description="the discriminator sees the input beside the output "
                                                "(cGAN); false: the output alone")
    spectral_norm: bool = Field(False, description="spectral normalisation of every convolution's weight")


@runtime_checkable
class Discriminator(Protocol):
    """What a discriminator's `build` returns: an ``nn.Module`` taking N x ctx.in_channels x H x W (the task
    decides: input and output stacked when conditional) and returning N x 1 x h x w logits, a list of such
    maps (one per scale), or, for feature matching across scales, per scale the list of its intermediate
    maps ending with its logits. Its params subclass :class:`DiscriminatorParams`.

    `receptive_field` is the side in pixels that each logit sees and `conditional` repeats its params'.
    Optional: ``forward_features(x)`` returning every intermediate map with the logits last, which lets
    ``multiscale`` and ``feature_matching`` use the discriminator's features."""

    receptive_field: int
    conditional: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor | list[Any]: ...


# -- loss terms -------------------------------------------------------------------------------------

class LossParams(Params):
    """Base of every loss term's parameters. `reads` names the step tensors the term reads, so
    `p2p validate` checks the wiring against the task's declaration without torch."""

    def reads(self) -> frozenset[str]:
        return frozenset()


class LossTerm:
    """Base of loss terms. The engine weights and sums what they return.

    `generator_loss` contributes to the generator side's objective (scaled by the recipe's weight);
    `discriminator_loss` to the discriminator side's (unscaled: the weight balances the generator's
    objectives). Return None for a side the term has no part in. A term that owns a network (a
    VGG) may also be an ``nn.Module``: the engine moves it to the device with the networks.
    """

    def generator_loss(self, t: Tensors) -> torch.Tensor | None:
        return None

    def discriminator_loss(self, t: Tensors) -> torch.Tensor | None:
        return None


# -- tasks ------------------------------------------------------------------------------------------

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
    first being the default.
    """

    roles: Mapping[str, Role]
    players: Mapping[str, Player]
    tensors: Mapping[str, tuple[str, ...]]
    directions: Mapping[str, Direction]
    visuals: Mapping[str, str] = field(default_factory=dict)
    images: tuple[str, ...] = ("a", "b")

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

    def roles_for(self, tensors: Iterable[str]) -> set[str]:
        """The roles that computing these tensors needs."""
        return {role for name in tensors for role in self.tensors.get(name, ())}


class TaskParams(Params):
    """Base of every task's parameters: `declare` says what the task needs and provides.

    `check` may reject a model that the task cannot train (for example a conditional discriminator
    where the task judges single images); it runs during recipe validation, without torch.
    """

    def declare(self) -> TaskSpec:
        raise NotImplementedError(f"{type(self).__name__} must define declare()")

    def check(self, model: Mapping[str, ComponentRef]) -> None:
        return None


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

    The engine owns every optimiser step; a task only says how tensors are computed. Its state
    (an image pool) goes into checkpoints through `state_dict`: tensors and JSON-able values.
    """

    def build_networks(self, ctx: TaskContext) -> dict[str, nn.Module]:
        raise NotImplementedError

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


# -- schedules --------------------------------------------------------------------------------------

class ScheduleParams(Params):
    """Base of learning-rate schedules' parameters. `reads` names the figures logged at epoch ends that the
    schedule observes (``eval/psnr``), so `p2p validate` checks that the run logs them."""

    per: Literal["epoch", "step"] = Field(
        "epoch", description="epoch: the rate changes between epochs; step: after every step")

    def reads(self) -> frozenset[str]:
        return frozenset()


class Schedule:
    """A learning-rate multiplier over training; `epoch` is fractional when stepping per step.

    A schedule that reacts to metrics (plateau) implements `observe` and keeps its state in
    `state_dict`, which goes into checkpoints as JSON.
    """

    def factor(self, epoch: float, epochs: int) -> float:
        raise NotImplementedError

    def observe(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Called at the end of each epoch with the figures logged at it: the sample images' L1 and, at
        epochs that evaluate, the `[eval]` figures."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


# -- metrics ----------------------------------------------------------------------------------------

class MetricParams(Params):
    """Base of every metric's parameters. `figures` and `paired` are read without torch, so `p2p validate`
    checks `[eval] best` and the plateau schedule's metric, and refuses a paired metric on a task whose
    directions have no target."""

    def figures(self) -> Mapping[str, bool]:
        """The figures `compute` returns, each with whether higher is better. The key "" is the metric's
        single figure (logged as ``eval/<metric>``); other keys are parts (``eval/<metric>/<part>``)."""
        return {"": True}

    def paired(self) -> bool:
        """True when the metric compares each output with its target (PSNR); False when it compares the set
        of outputs with the set of real images of the output's kind (a Frechet distance, unpaired tasks)."""
        return True


@dataclass(frozen=True)
class Comparison:
    """One evaluation batch of one direction of the task: N x C x H x W images in [-1, 1] on the device.

    `input` is what the direction reads (a label map for labels-to-photo), `output` its translation, `real`
    the real images of the output's image key from the same batch, and `target` the tensor the task says the
    output should equal (None for unpaired directions; for paired ones the same images as `real`)."""

    direction: str
    input: torch.Tensor
    output: torch.Tensor
    real: torch.Tensor
    target: torch.Tensor | None = None


class Metric:
    """Base of metrics: accumulates over a whole split, then reports.

    `update` is called with each batch and must not wait for the device (keep sums, counts and histograms
    as tensors); `compute` runs once at the end and returns the figures its parameters' `figures` names,
    as floats. `reset` empties the state for the next evaluation. A metric that owns a network (a
    segmenter, a feature extractor) is also an ``nn.Module``: the engine moves it to the device and puts it
    in eval mode; its parameters are never trained and never saved in checkpoints."""

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, batch: Comparison) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError


class Segmenter(Protocol):
    """A semantic segmentation network (the ``segmenter`` kind), as the FCN-score uses one: an
    ``nn.Module`` from N x 3 x H x W RGB images in [-1, 1] to N x K x H x W class scores, K = len(classes).

    `palette` gives each class's RGB colour (0-255) in colour-coded label maps, so a metric can decode such
    maps into class indices; `ignore_index` is a label that is scored nowhere (-1: none). Its weights come
    from a local file the user names; a segmenter never downloads anything."""

    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
"""The 19 Cityscapes train-ID classes in train-ID order. Datasets, segmenters and segmentation metrics of
Cityscapes share this one label set, so a class index means the same class in each."""

CITYSCAPES_COLOURS: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0),
    (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))
"""The standard RGB colour (0-255) of each of :data:`CITYSCAPES_CLASSES` in colour-coded label maps."""

CITYSCAPES_VOID_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (81, 0, 81), (250, 170, 160), (230, 150, 140), (180, 165, 180), (150, 100, 100), (150, 120, 90),
    (111, 74, 0), (0, 0, 90), (0, 0, 110))
"""Colours of the Cityscapes classes outside the 19 (unlabelled and ego vehicle in black first, then ground,
parking, rail track, guard rail, bridge, tunnel, dynamic, caravan, trailer): label pixels to leave unscored."""


BATCH_KEYS: Mapping[str, str] = {
    "a": "the input side's image, float32 C x H x W in [-1, 1] (a_channels channels)",
    "b": "the output side's image, likewise (b_channels channels); absent for single-side datasets",
    "name": "a name for the item (its file's stem): output file names and error messages use it",
    "skipped": "how many unreadable records were passed over to produce this item (0 normally); training "
               "counts them as skipped_files",
}
"""The keys of a dataset item that p2p reads. Further image keys (pix2pixHD's ``label``) are declared in the
adapter's `channels` and the task's ``TaskSpec.images``; other keys (``name_b``, ``label_file``) pass through
to the task untouched. Every image of one item has the same H x W."""

Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
"""The resizing and cropping modes of :func:`make_jitter`, as recipes spell them."""

Interpolation = Literal["bicubic", "bilinear"]
"""How :func:`make_jitter` resamples images (label maps given as masks are always resampled nearest)."""


@runtime_checkable
class DatasetAdapter(Protocol):
    """What a dataset's `build` returns; building it must not touch the disk (``p2p translate`` rebuilds
    one from a checkpoint on a machine without the data).

    `dataset(split, train=...)` gives items with the :data:`BATCH_KEYS` (``train=True`` adds random
    jitter: :func:`make_jitter`); `read_input` and `write_output` are what ``p2p translate`` reads and
    writes, converted and normalised as in training.

    Optional: ``check(split, *, deep=False) -> DataReport`` scans a split without training (headers only
    unless `deep`): ``p2p data check`` prints it and training refuses to start unless it is ``ok``;
    ``channels``, a mapping of further batch image keys to their channel counts (``{"label": 2}``); and
    ``display(images, key)``, turning an N x C x H x W batch of one image key into RGB in [-1, 1] for sample
    grids (a label map in its colour palette).

    Optional, the files ``p2p translate`` gives ``read_input`` and asks of ``write_output`` (the adapter is the
    authority on its formats: a folder is translated file by file where its suffix is one it reads):
    ``input_suffixes(key) -> Collection[str]``, the suffixes with their dot (``{".npy"}``, ``".nii.gz"``
    too) that ``read_input`` reads for an image key, and ``output_suffixes(key) -> Collection[str]``, those
    ``write_output`` writes for one, the usual first. Without them, p2p's image formats:
    :data:`IMAGE_SUFFIXES` and :func:`write_suffixes` (8 bits)."""

    a_channels: int
    b_channels: int

    def dataset(self, split: str, *, train: bool) -> torch.utils.data.Dataset: ...

    def read_input(self, path: str, side: str = "a") -> torch.Tensor: ...

    def write_output(self, image: torch.Tensor, path: str, side: str = "b") -> None: ...


# Image I/O (precise: 16-bit PNG/TIFF, N-channel stacks, header probes, normalisation rules) lives in
# p2pcore.imageio; it is offered here lazily so that importing the api stays light.
_IMAGE_IO = frozenset({"IMAGE_SUFFIXES", "ImageInfo", "Normalization", "load_image", "match_channels",
                       "probe_image", "read_image", "to_unit", "write_image", "write_suffixes"})


# Joint jitter for dataset adapters (resize, crop and flip every image of an item alike) needs torchvision;
# it lives in p2pcore.jitter and is offered here lazily too.
_JITTER = frozenset({"make_jitter", "jitter", "prepare_image", "finish_image"})


def __getattr__(name: str) -> Any:
    if name in _IMAGE_IO:
        from p2pcore import imageio

        return getattr(imageio, name)
    if name in _JITTER:
        from p2pcore import jitter

        return getattr(jitter, name)
    raise AttributeError(f"module 'p2pcore.api' has no attribute {name!r}")


# -- trained runs, for plugin commands ----------------------------------------------------------------------

@dataclass
class TrainedRun:
    """A run rebuilt from a checkpoint by :func:`load_trained`: its validated recipe, its task, its dataset
    adapter and the networks asked for, with the checkpoint's weights."""

    recipe: Any
    task: Task
    adapter: Any
    nets: dict[str, nn.Module]


def load_trained(checkpoint: str | Any, *, roles: Iterable[str], data: Mapping[str, Any] | None = None,
                 device: str = "cpu", builder: Builder | None = None) -> TrainedRun:
    """Rebuild a checkpoint's task, dataset adapter and networks, for commands a plugin adds that use
    trained networks (``p2p cluster`` encodes a dataset with an encoder).

    The networks are those the task builds when `roles` are wanted, loaded with the checkpoint's weight
    average where it keeps one, else its last weights, and moved to `device`. `data` updates the recipe's
    ``[data]`` table (``{"root": ...}`` to read the dataset elsewhere), or replaces it when it names another
    adapter. A role the recipe lacks, or a checkpoint that does not fit its recipe, is a P2PError naming
    the file."""
    from p2pcore.engine.assemble import assemble_trained
    from p2pcore.engine.checkpoint import read_checkpoint
    from p2pcore.plugins import load_host

    run = assemble_trained(read_checkpoint(checkpoint), builder if builder is not None else load_host(),
                           roles=list(roles), data=data)
    for net in run.nets.values():
        net.to(device)
    return TrainedRun(run.recipe, run.task, run.adapter, run.nets)


# -- the plugin host and weights-only checkpoints, for plugin commands ---------------------------------------

def read_weights(path: str | Any, *, what: str, key: str, hint: str) -> dict[str, torch.Tensor]:
    """Pretrained weights a user names (a perceptual loss's VGG, a segmenter): the names and tensors of a .pth
    state_dict (read with ``weights_only``) or a .safetensors file. A missing, unreadable or foreign file is a
    P2PError naming the file, `key` (the recipe key of the path) and `hint`; `what` names the network in the
    message. A ``state_dict`` wrapper and a ``module.`` prefix on every name are taken off."""
    from p2pcore.weights import read_weights as read

    return read(path, what=what, key=key, hint=hint)


def load_weights(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str, file: str, key: str, hint: str,
                 prefix: str = "", optional: tuple[str, ...] = (), refuse_extra: bool = False,
                 assign: bool = False) -> None:
    """Fill every tensor of `module` from weights `read_weights` gave (names carrying `prefix`), checking each
    name and shape: a file that does not fit is a P2PError naming the tensor, the file and `key`. With
    `refuse_extra` a tensor the module lacks is an error too; names ending in one of `optional` (e.g.
    ``num_batches_tracked``) may be absent. `assign` puts the file's tensors in place (a module built on the
    meta device)."""
    from p2pcore.weights import load_weights as load

    load(module, state, what=what, file=file, key=key, hint=hint, prefix=prefix, optional=optional,
         refuse_extra=refuse_extra, assign=assign)


def load_host(*, strict: bool = False) -> Any:
    """The plugin host, as the ``p2p`` command loads it: every installed plugin's components, for a command a
    plugin adds that builds or validates components. Its public methods: ``build(kind, spec, in_channels=...,
    out_channels=...)`` makes a component from a name or a table, ``resolve(kind, spec)`` validates a spec
    (``.as_table()`` spells out every default, as a run's recipe records it) and ``describe(kind, spec)``
    names the plugin and version providing it. `strict`: a plugin that fails to load is an error."""
    from p2pcore.plugins import load_host as load

    return load(strict=strict)


def write_weights(path: str | Any, recipe: Mapping[str, Any], nets: Mapping[str, nn.Module], *, source: str,
                  host: Any | None = None) -> None:
    """Write networks brought from elsewhere (``p2p import`` converts other implementations' files) as a p2p
    checkpoint holding weights only, with the recipe that rebuilds them: ``p2p translate``, ``export`` and
    ``init.checkpoint`` then use it like a trained run's, and ``p2p run --resume`` refuses it.

    `recipe` needs ``task``, ``data`` and a ``model`` table naming each role of `nets`; it is validated first
    as ``p2p translate`` reads it (loss terms and metrics are not needed), so a checkpoint that could not be
    translated is never written: the P2PError names the key. The task, the dataset adapter and each network
    are recorded with their plugins' versions; `source` says where the weights came from (``p2p inspect``
    shows it). The file is written atomically."""
    from p2pcore import __version__
    from p2pcore.engine.checkpoint import write_checkpoint
    from p2pcore.recipe import validate_recipe

    host = host if host is not None else load_host()
    model = recipe.get("model", {})
    if set(model) != set(nets):
        raise ValueError(f"write_weights: the recipe's model roles {sorted(model)} are not the networks' "
                         f"{sorted(nets)}")
    checked = validate_recipe(recipe, host, inference=True)
    refs = [checked.task, checked.data, *(checked.model[role] for role in nets)]
    tensors = {f"net.{role}.{key}": value for role, net in nets.items() for key, value in net.state_dict().items()}
    metadata = {"recipe": dict(recipe), "components": [host.describe(ref.kind, ref) for ref in refs],
                "step": 0, "epoch": 0, "source": source, "p2p_version": __version__}
    write_checkpoint(path, tensors, metadata)
