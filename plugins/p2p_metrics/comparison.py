"""What every metric checks of a batch before measuring it: shapes only (no device sync), as user errors
that name the metric and the direction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pcore.api import Comparison, P2PError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def paired_images(metric: str, batch: Comparison) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, target) of a paired metric, of one shape N x C x H x W."""
    if batch.target is None:
        raise P2PError(f"the metric {metric!r} compares each output with its target, but the direction "
                       f"{batch.direction!r} has none",
                       hint="use it on a task whose directions have targets (pix2pix), or choose an unpaired "
                            "metric (frechet_distance, lab_histogram_intersection)")
    _same_shape(metric, batch.direction, batch.output, batch.target, "target", whole=True)
    return batch.output, batch.target


def unpaired_images(metric: str, batch: Comparison) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, real) of an unpaired metric: image shapes C x H x W alike, batch sizes free."""
    _same_shape(metric, batch.direction, batch.output, batch.real, "real images", whole=False)
    return batch.output, batch.real


def _same_shape(metric: str, direction: str, output: torch.Tensor, other: torch.Tensor, name: str, *,
                whole: bool) -> None:
    for tensor, what in ((output, "outputs"), (other, name)):
        if tensor.ndim != 4:
            raise P2PError(f"the metric {metric!r} needs N x C x H x W images, but the {what} of direction "
                           f"{direction!r} have shape {tuple(tensor.shape)}")
    a, b = (tuple(output.shape), tuple(other.shape)) if whole else (tuple(output.shape[1:]), tuple(other.shape[1:]))
    if a != b:
        raise P2PError(f"the metric {metric!r} got outputs of shape {tuple(output.shape)} and {name} of shape "
                       f"{tuple(other.shape)} in direction {direction!r}",
                       hint="outputs and the images they are compared with must have the same size and channels")
