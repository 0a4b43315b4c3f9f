"""The public face of p2p for plugin authors: the only part of the core a plugin imports.

One module per contract lives beside this facade (:mod:`p2pcore.api.base`, ``networks``, ``tensors``, ``losses``,
``tasks``, ``schedules``, ``data``, ``metrics``, ``labels``, ``callbacks``); everything is offered here under
one name, so ``from p2pcore.api import X`` is all a plugin writes. A plugin writes its files as the core does,
whole or not at all (:mod:`p2pcore.atomicfile`): ``write_bytes_atomically``, ``write_text_atomically``,
``write_atomically`` (for a writer that takes a path) and ``check_folder_writable`` (before long work).
Importing it does not import torch: image I/O, joint jitter and the services that need the engine
(:func:`load_trained`, :func:`write_weights`, :func:`load_host`) are loaded on first use.

Loaded on first use (``help(p2pcore.api)`` lists them with the rest, importing torch to do so):

- image files (:mod:`p2pcore.imageio`): ``read_image``, ``load_image``, ``write_image``, ``probe_image``,
  ``ImageInfo``, ``Normalization``, ``to_unit``, ``match_channels``, ``IMAGE_SUFFIXES``, ``write_suffixes``;
- a dataset's joint resize, crop and flip (:mod:`p2pcore.jitter`): ``make_jitter``, ``jitter``,
  ``prepare_image``, ``finish_image``;
- registering a pair of images (:mod:`p2pcore.alignment`): ``Alignment``;
- services needing the engine or the host (:mod:`p2pcore.services`): ``load_trained``, ``TrainedRun``,
  ``write_weights``, ``load_host``.
"""

from __future__ import annotations

from typing import Any

from p2pcore.api.base import (
    API_VERSION,
    BuildContext,
    Builder,
    CallbackRef,
    Checked,
    ComponentRef,
    DatasetRef,
    DiscriminatorRef,
    Field,
    GeneratorRef,
    LossRef,
    MetricRef,
    NormRef,
    Params,
    Register,
    ScheduleRef,
    SegmenterRef,
    TaskRef,
    hookimpl,
)
from p2pcore.api.callbacks import Callback, CallbackParams, RunInfo
from p2pcore.api.data import (
    BATCH_KEYS,
    DataReport,
    DatasetAdapter,
    DatasetParams,
    Interpolation,
    ItemCount,
    ItemSize,
    Preprocess,
)
from p2pcore.api.labels import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, CITYSCAPES_VOID_COLOURS
from p2pcore.api.losses import LossParams, LossTerm
from p2pcore.api.metrics import Comparison, Metric, MetricParams, Segmenter
from p2pcore.api.networks import Discriminator, DiscriminatorParams, Generator, NormFactory, Tap, check_taps
from p2pcore.api.schedules import Schedule, ScheduleParams
from p2pcore.api.tasks import (
    Direction,
    OwnNetwork,
    Player,
    RecipeTerm,
    RecipeView,
    Role,
    Side,
    Task,
    TaskContext,
    TaskParams,
    TaskSpec,
)
from p2pcore.api.tensors import Tensors
from p2pcore.atomicfile import (
    check_folder_writable,
    write_atomically,
    write_bytes_atomically,
    write_text_atomically,
)
from p2pcore.errors import P2PError, did_you_mean
from p2pcore.weights import load_weights, read_weights

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
    "CITYSCAPES_VOID_COLOURS", "Checked", "Callback", "CallbackParams", "RunInfo", "DatasetParams", "ItemSize",
    "CallbackRef", "ItemCount", "Tap", "check_taps", "RecipeView", "RecipeTerm",
    "OwnNetwork", "Alignment", "write_atomically", "write_bytes_atomically", "write_text_atomically",
    "check_folder_writable",
]

# Offered lazily: image I/O and joint jitter need torch and torchvision; the services need the engine.
_LAZY = {
    **dict.fromkeys(("IMAGE_SUFFIXES", "ImageInfo", "Normalization", "load_image", "match_channels", "probe_image",
                     "read_image", "to_unit", "write_image", "write_suffixes"), "p2pcore.imageio"),
    **dict.fromkeys(("make_jitter", "jitter", "prepare_image", "finish_image"), "p2pcore.jitter"),
    "Alignment": "p2pcore.alignment",  # NumPy only; its warp imports torch when called
    **dict.fromkeys(("TrainedRun", "load_trained", "load_host", "write_weights"), "p2pcore.services"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'p2pcore.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
