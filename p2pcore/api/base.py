"""Base types every plugin uses: the hook marker, the API version, parameters, references to other
components and the context a builder receives."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, get_args

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

hookimpl = pluggy.HookimplMarker("p2p")

API_VERSION = "1.7"
"""The version of the contract between p2p and its plugins: this module and the hooks of
:mod:`p2pcore.hookspecs`. The major number changes when something a plugin may rely on changes shape
or goes away, the minor one when something is added. A plugin declares the versions it supports in its
entry module, as a version specifier read without importing it: ``P2P_API = ">=1,<2"``. A plugin whose
range excludes this version is not loaded (``p2p plugins`` shows it as incompatible, with its range);
one that declares no range is loaded, with a warning in ``p2p plugins``.

1.1 added the dataset adapter's optional ``input_suffixes``/``output_suffixes`` (``p2p translate`` reads and
writes the files an adapter declares) and :func:`write_suffixes`: an adapter relying on them declares
``P2P_API = ">=1.1,<2"``. 1.2 added the Cityscapes label set (:data:`CITYSCAPES_CLASSES`,
:data:`CITYSCAPES_COLOURS`, :data:`CITYSCAPES_VOID_COLOURS`). 1.3 added the callback kind
(:class:`~p2pcore.api.callbacks.Callback`, ``p2p_register_callbacks``, :data:`CallbackRef`) and the dataset
kind's parameter base (:class:`~p2pcore.api.data.DatasetParams`), enforces every kind's parameter base when a
plugin loads, and split this API into one module per contract behind the same names. 1.4 added the
generators' feature-tap contract (:class:`~p2pcore.api.networks.Tap`, ``taps()``, ``feature_maps(x, layers)``,
:func:`~p2pcore.api.networks.check_taps`). 1.5 added task-owned networks
(:class:`~p2pcore.api.tasks.OwnNetwork`, ``TaskSpec.own``, ``Task.build_own_networks``), a task's check of the
whole recipe (``TaskParams.check_recipe`` with :class:`~p2pcore.api.tasks.RecipeView`) and its default loss
terms (``TaskParams.default_loss``), and says that a task receives the underlying modules under ``--nproc``.
1.6 added the alignment helpers for adapters (:class:`~p2pcore.alignment.Alignment`: a camera pair's
registration read from a ``[data.align]`` block, warped and cropped to the common field of view). 1.7 added a
dataset's declared item count (``DatasetParams.item_count`` returning :class:`~p2pcore.api.data.ItemCount`, from
which ``p2p validate`` estimates the data's memory) and the atomic file writers (``write_bytes_atomically``,
``write_text_atomically``, ``write_atomically``, ``check_folder_writable``)."""


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
CallbackRef = _ref("callback")


class Builder(Protocol):
    """What builds components: the plugin host. Builders reach it only through their context."""

    def build(self, kind: str, spec: Any, *, in_channels: int | None = None, out_channels: int | None = None,
              key: str = "", facts: Mapping[str, Any] | None = None) -> Any: ...


class Register(Protocol):
    """The callable each ``p2p_register_*`` hook receives, bound to the plugin and the kind, so every
    component records which distribution it came from.

    `build(params, ctx)` makes the component when a recipe asks for it (import torch inside it); `params` is
    the pydantic model of its parameters, a subclass of the kind's base (`Params` for norms, generators and
    segmenters; `DiscriminatorParams`, `LossParams`, `DatasetParams`, `TaskParams`, `ScheduleParams`,
    `MetricParams`, `CallbackParams`), which is also the default: a plugin registering another class fails
    to load, naming the base it must use. `aliases` are further names; `summary` replaces the first line of
    `build`'s docstring in ``p2p list``; ``facts(params) -> dict`` derives figures ``p2p show`` prints (a
    receptive field), without torch."""

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


