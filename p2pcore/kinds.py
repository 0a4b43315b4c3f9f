"""The kinds of component a plugin may register, declared once.

Each :class:`Kind` names everything p2p knows about one kind: its registration hook, the base its parameters
must derive from (enforced when a plugin loads), the reference type recipes use for it, the contract its
builder's result meets, and where the scaffold's template and ``p2pcore.testing``'s contract check live. The
registry, the plugin host, the hook specifications' checks, ``p2p new plugin``, ``p2pcore.testing``, the
generated docs and the command line's lists all derive from :data:`KINDS`.

The template and the check are named by dotted string: they live in layers above this one (``scaffold/``,
``testing/``), which look them up here; this module never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from p2pcore.api.base import (
    CallbackRef,
    DatasetRef,
    DiscriminatorRef,
    GeneratorRef,
    LossRef,
    MetricRef,
    NormRef,
    Params,
    ScheduleRef,
    SegmenterRef,
    TaskRef,
)
from p2pcore.api.callbacks import Callback, CallbackParams
from p2pcore.api.data import DatasetAdapter, DatasetParams
from p2pcore.api.losses import LossParams, LossTerm
from p2pcore.api.metrics import Metric, MetricParams, Segmenter
from p2pcore.api.networks import Discriminator, DiscriminatorParams, Generator, NormFactory
from p2pcore.api.schedules import Schedule, ScheduleParams
from p2pcore.api.tasks import Task, TaskParams
from p2pcore.errors import P2PError, did_you_mean

TEMPLATES = "p2pcore.scaffold.templates"
"""The package holding one scaffold template module per kind (``p2pcore.scaffold.templates.norm``)."""
TESTING = "p2pcore.testing"
"""The package whose public names include every kind's contract check."""


@dataclass(frozen=True)
class Kind:
    """One kind of component.

    `name` is what recipes, ``p2p list`` and ``ComponentRef.kind`` say; `hook` the ``p2p_register_*`` hook
    specification that registers it; `params` the class every such component's parameters derive from
    (``register`` refuses another at load time and uses it as the default); `ref` the annotated
    ``ComponentRef`` type a parameter referring to one uses (``NormRef``); `contract` the protocol or base
    class its builder returns; `summary` one line for listings; `template` the dotted module of its
    ``p2p new plugin`` template and `check` the dotted name of its contract check in ``p2pcore.testing``."""

    name: str
    hook: str
    params: type[Params]
    ref: Any
    contract: type
    summary: str
    template: str
    check: str

    @property
    def plural(self) -> str:
        """The hook's noun: ``norms``, ``losses``."""
        return self.hook.removeprefix("p2p_register_")

    @property
    def ref_name(self) -> str:
        """The name ``p2pcore.api`` offers `ref` under (``NormRef``)."""
        return f"{self.name.capitalize()}Ref"

    @property
    def check_name(self) -> str:
        """The check's name as ``p2pcore.testing`` exports it (``check_norm``)."""
        return self.check.rsplit(".", 1)[-1]

    def accepts(self, params: Any) -> bool:
        """Whether `params` is a parameter class a component of this kind may register."""
        return isinstance(params, type) and issubclass(params, self.params)


def _kind(name: str, params: type[Params], ref: Any, contract: type, summary: str, *, plural: str = "") -> Kind:
    return Kind(name=name, hook=f"p2p_register_{plural or name + 's'}", params=params, ref=ref, contract=contract,
                summary=summary, template=f"{TEMPLATES}.{name}", check=f"{TESTING}.check_{name}")


KINDS: Mapping[str, Kind] = MappingProxyType({kind.name: kind for kind in (
    _kind("norm", Params, NormRef, NormFactory,
          "normalisation layers: a factory making a layer for a number of channels"),
    _kind("generator", Params, GeneratorRef, Generator,
          "generator networks: an image of the input's kind to one of the output's, in [-1, 1]"),
    _kind("discriminator", DiscriminatorParams, DiscriminatorRef, Discriminator,
          "discriminator networks: images to maps of real/fake logits"),
    _kind("loss", LossParams, LossRef, LossTerm,
          "loss terms: weighted parts of the generator's and the discriminator's objectives", plural="losses"),
    _kind("dataset", DatasetParams, DatasetRef, DatasetAdapter,
          "dataset adapters: the splits of a dataset as items of named images"),
    _kind("task", TaskParams, TaskRef, Task,
          "tasks: the networks a system trains, how a step computes its tensors, how it translates"),
    _kind("schedule", ScheduleParams, ScheduleRef, Schedule,
          "learning-rate schedules: a factor of the learning rates over training"),
    _kind("metric", MetricParams, MetricRef, Metric,
          "evaluation metrics: figures over a whole dataset split"),
    _kind("segmenter", Params, SegmenterRef, Segmenter,
          "semantic segmenters: class scores of photos, for the FCN-score"),
    _kind("callback", CallbackParams, CallbackRef, Callback,
          "callbacks: code that follows a training run (a logger, a dashboard) without changing it"),
)})
"""Every kind, in the order listings show them."""

NAMES: tuple[str, ...] = tuple(KINDS)
"""The kinds' names, in order."""

BY_HOOK: Mapping[str, Kind] = MappingProxyType({kind.hook: kind for kind in KINDS.values()})
"""Each kind by its registration hook's name."""


def get_kind(name: str, *, key: str | None = None) -> Kind:
    """The kind called `name`; an unknown one is a P2PError suggesting the closest name."""
    found = KINDS.get(name)
    if found is not None:
        return found
    guess = did_you_mean(name, NAMES)
    raise P2PError(f"unknown component kind {name!r}", key=key,
                   hint=(f"did you mean {guess!r}? " if guess else "") + f"kinds: {', '.join(NAMES)}")


def params_refusal(kind: Kind, name: str, params: Any, *, plugin: str, distribution: str) -> str | None:
    """Why plugin `plugin` of `distribution` may not register `kind` `name` with `params` (None when it may):
    it names the plugin, the component and the base class its parameters must derive from."""
    if kind.accepts(params):
        return None
    given = params.__name__ if isinstance(params, type) else repr(params)
    base = f"p2pcore.api.{kind.params.__name__}"
    return (f"plugin {plugin!r} of {distribution} registers {kind.name} {name!r} with params {given}, which "
            f"does not derive from {base}; the parameters of every {kind.name} must subclass {base}")
