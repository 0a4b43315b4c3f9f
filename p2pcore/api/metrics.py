"""The metric and segmenter contracts: figures over a whole split, and the networks that score them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from p2pcore.api.base import Params

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
