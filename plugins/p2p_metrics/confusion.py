"""Label maps as class indices, and the confusion matrix the segmentation scores are read from.

Everything here stays on the device and never waits for it: counts are added with ``index_add_`` (torch's
``bincount`` sizes its result from the data's maximum, which reads the device), pixels not to be scored are
sent to a spare bin instead of being selected with a boolean mask (which also reads the device).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from p2pcore.api import P2PError

NOT_SCORED = -1


def nearest_colour_table(palette: Sequence[Sequence[int]], ignore_colors: Sequence[Sequence[int]] = ()
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The colours to match (P x 3, 0-255) and the class of each (ignore colours: NOT_SCORED)."""
    colours = torch.tensor([list(c) for c in (*palette, *ignore_colors)], dtype=torch.float32)
    classes = torch.tensor(list(range(len(palette))) + [NOT_SCORED] * len(ignore_colors), dtype=torch.long)
    return colours, classes


def decode_colours(images: torch.Tensor, colours: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB in [-1, 1] -> N x H x W classes of the nearest colour (Euclidean, in 0-255 units)."""
    rgb = (images.float() + 1) * 127.5
    colours = colours.to(rgb.device)
    # |x - c|^2 less |x|^2, which leaves the argmin unchanged
    distance = (colours * colours).sum(1).view(1, -1, 1, 1) - 2 * torch.einsum("nchw,pc->nphw", rgb, colours)
    return classes.to(rgb.device)[distance.argmin(1)]


def decode_labels(maps: torch.Tensor, classes: int, colours: torch.Tensor, colour_classes: torch.Tensor, *,
                  what: str) -> torch.Tensor:
    """N x C x H x W label maps in [-1, 1] -> N x H x W class indices (NOT_SCORED or K for unscored pixels).

    3 channels: colour-coded (nearest colour); 1 channel: the level -1 + 2k/K of class k; K channels: argmax."""
    if maps.ndim != 4:
        raise P2PError(f"{what} must be N x C x H x W label maps, not of shape {tuple(maps.shape)}")
    channels = maps.shape[1]
    if channels == 3:
        return decode_colours(maps, colours, colour_classes)
    if channels == 1:
        return torch.round((maps[:, 0].float() + 1) * (classes / 2)).long().clamp(0, classes)
    if channels == classes:
        return maps.argmax(1)
    raise P2PError(f"{what} have {channels} channels: a label map is colour-coded (3), one level per pixel (1) "
                   f"or one channel per class ({classes})")


class ConfusionMatrix:
    """K x K counts of (label, prediction) pairs, accumulated on the device of the first batch."""

    def __init__(self, classes: int, ignore_index: int = -1) -> None:
        self.classes = classes
        self.ignore_index = ignore_index
        self.counts: torch.Tensor | None = None

    def reset(self) -> None:
        self.counts = None

    def add(self, labels: torch.Tensor, predictions: torch.Tensor) -> None:
        """Count N x H x W labels against predictions; labels outside 0..K-1 or equal to ignore_index skip."""
        k = self.classes
        if self.counts is None:
            self.counts = torch.zeros(k * k + 1, dtype=torch.long, device=labels.device)
        scored = (labels >= 0) & (labels < k) & (labels != self.ignore_index)
        index = torch.where(scored, labels * k + predictions.clamp(0, k - 1), k * k).flatten()
        self.counts.index_add_(0, index, torch.ones(1, dtype=torch.long, device=index.device).expand_as(index))

    def matrix(self) -> torch.Tensor:
        """Rows: labels, columns: predictions (float64, on the CPU)."""
        if self.counts is None:
            return torch.zeros(self.classes, self.classes, dtype=torch.float64)
        return self.counts[:-1].view(self.classes, self.classes).double().cpu()

    def scores(self) -> dict[str, float]:
        """pixel_accuracy, class_accuracy (classes present in the labels), iou (classes in labels or predictions);
        NaN when nothing was scored."""
        m = self.matrix()
        keep = torch.ones(self.classes, dtype=torch.bool)
        if 0 <= self.ignore_index < self.classes:
            keep[self.ignore_index] = False
        hits, labelled, predicted = m.diag(), m.sum(1), m.sum(0)
        union = labelled + predicted - hits
        present, seen = keep & (labelled > 0), keep & (union > 0)
        nan = float("nan")
        return {
            "pixel_accuracy": float(hits.sum() / labelled.sum()) if labelled.sum() > 0 else nan,
            "class_accuracy": float((hits[present] / labelled[present]).mean()) if present.any() else nan,
            "iou": float((hits[seen] / union[seen]).mean()) if seen.any() else nan,
        }
