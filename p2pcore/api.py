"""The public face of p2p for plugin authors: the only module a plugin imports from the core.

Importing this module does not import torch, so ``p2p --help`` and recipe validation stay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Protocol, runtime_checkable

import pluggy
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_serializer

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
    )

__all__ = [
    "hookimpl", "Params", "Field", "ComponentRef", "NormRef", "GeneratorRef", "DiscriminatorRef",
    "LossRef", "DatasetRef", "BuildContext", "TaskContext", "NormFactory", "LossTerm", "Task",
    "DatasetAdapter", "Tensors", "P2PError", "did_you_mean", "IMAGE_SUFFIXES", "ImageInfo", "Normalization",
    "load_image", "match_channels", "probe_image", "read_image", "to_unit", "write_image",
]

hookimpl = pluggy.HookimplMarker("p2p")


class Params(BaseModel):
    """Base class of every component's parameters: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ComponentRef(BaseModel):
    """A reference to a registered component: its kind, its name and the options passed to it.

    Written in a recipe either as a name (``norm = "instance"``) or as a table
    (``norm = { name = "batch", momentum = 0.05 }``).
    """

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    options: dict[str, Any] = Field(default_factory=dict)

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


@dataclass
class BuildContext:
    """Facts derived by p2p (never typed by users) and the way to build sub-components.

    `in_channels`/`out_channels` come from the dataset and the task; `key` is the recipe path of the
    component being built, so errors can point at it.
    """

    host: Any
    in_channels: int | None = None
    out_channels: int | None = None
    key: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def build(self, ref: ComponentRef, *, in_channels: int | None = None, out_channels: int | None = None,
              key: str | None = None) -> Any:
        """Build a referenced component, by default with this context's channel counts."""
        return self.host.build(ref.kind, ref,
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


class LossTerm:
    """Base class of loss terms. The engine weights and sums what they return.

    `generator_loss` contributes to the generator objective (scaled by the recipe's weight);
    `discriminator_loss` contributes to the discriminator objective (unscaled: the weight balances
    the generator's objectives). Return None for a phase the term has no part in.
    """

    uses_discriminator: bool = False

    def generator_loss(self, t: Tensors) -> torch.Tensor | None:
        return None

    def discriminator_loss(self, t: Tensors) -> torch.Tensor | None:
        return None


@dataclass
class TaskContext:
    """What a task needs to build its networks."""

    host: Any
    a_channels: int
    b_channels: int
    needs_discriminator: bool


class Task(Protocol):
    """The networks of a translation method and the tensors a training step needs."""

    generator_roles: tuple[str, ...]
    discriminator_roles: tuple[str, ...]

    def build_networks(self, model: Mapping[str, ComponentRef], ctx: TaskContext) -> dict[str, nn.Module]: ...

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors: ...

    def discriminator_phase(self, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors: ...

    def generator_phase(self, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors: ...

    def sample_images(self, t: Tensors) -> list[torch.Tensor]: ...

    def translate(self, nets: Mapping[str, nn.Module], a: torch.Tensor) -> torch.Tensor: ...


class DatasetAdapter(Protocol):
    """Reads a dataset. Images are float tensors C x H x W in [-1, 1]."""

    a_channels: int
    b_channels: int

    def dataset(self, split: str, *, train: bool) -> torch.utils.data.Dataset: ...

    def read_input(self, path: str) -> torch.Tensor: ...

    def write_output(self, image: torch.Tensor, path: str) -> None: ...


# Image I/O (precise: 16-bit PNG/TIFF, N-channel stacks, header probes, normalisation rules) lives in
# p2pcore.imageio; it is offered here lazily so that importing the api stays light.
_IMAGE_IO = frozenset({"IMAGE_SUFFIXES", "ImageInfo", "Normalization", "load_image", "match_channels",
                       "probe_image", "read_image", "to_unit", "write_image"})


def __getattr__(name: str) -> Any:
    if name in _IMAGE_IO:
        from p2pcore import imageio

        return getattr(imageio, name)
    raise AttributeError(f"module 'p2pcore.api' has no attribute {name!r}")
