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


def scored_index(labels: torch.Tensor, predictions: torch.Tensor, classes: int, ignore_index: int) -> torch.Tensor:
    """label * K + prediction for each pixel, or K * K (a spare bin) for a pixel not scored."""
    scored = (labels >= 0) & (labels < classes) & (labels != ignore_index)
    return torch.where(scored, labels * classes + predictions.clamp(0, classes - 1), classes * classes)


def count(index: torch.Tensor, bins: int) -> torch.Tensor:
    """How often each of `bins` values occurs in `index`, without reading the device."""
    ones = torch.ones(1, dtype=torch.long, device=index.device).expand(index.numel())
    return torch.zeros(bins, dtype=torch.long, device=index.device).index_add_(0, index.flatten(), ones)


class ConfusionMatrix:
    """K x K counts of (label, prediction) pairs over the whole split, accumulated on the device of the first
    batch: the scores read from it weigh every scored pixel alike, as pix2pix's FCN-score does."""

    def __init__(self, classes: int, ignore_index: int = -1) -> None:
        self.classes = classes
        self.ignore_index = ignore_index
        self.counts: torch.Tensor | None = None

    def reset(self) -> None:
        self.counts = None

    def add(self, labels: torch.Tensor, predictions: torch.Tensor) -> None:
        """Count N x H x W labels against predictions; labels outside 0..K-1 or equal to ignore_index skip."""
        counts = count(scored_index(labels, predictions, self.classes, self.ignore_index), self.classes ** 2 + 1)
        self.counts = counts if self.counts is None else self.counts + counts

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


class PerImageMeans:
    """The same three scores computed for each image and averaged over the images, so a small image region
    weighs as much in its image's score as a large one does in another's. Per image, class accuracy and IoU
    average over the classes present in that image's labels (a class the image does not contain has no score
    of its own there; predicting it still lowers the IoU of the classes whose pixels it takes). Images with no
    scored pixel are left out. Sums stay on the device."""

    def __init__(self, classes: int, ignore_index: int = -1) -> None:
        self.classes = classes
        self.ignore_index = ignore_index
        self.sums: torch.Tensor | None = None  # sums of pixel, class and IoU scores; images scored

    def reset(self) -> None:
        self.sums = None

    def add(self, labels: torch.Tensor, predictions: torch.Tensor) -> None:
        """Score each of N x H x W labels against its predictions; add the scores to the running sums."""
        k, n = self.classes, labels.shape[0]
        index = scored_index(labels, predictions, k, self.ignore_index).view(n, -1)
        index = torch.where(index < k * k, index + torch.arange(n, device=index.device)[:, None] * (k * k), n * k * k)
        m = count(index, n * k * k + 1)[:-1].view(n, k, k).double()
        hits, labelled = torch.diagonal(m, dim1=1, dim2=2), m.sum(2)
        union = labelled + m.sum(1) - hits
        present = labelled > 0
        if 0 <= self.ignore_index < k:
            present[:, self.ignore_index] = False
        classes_present = present.sum(1)
        per_class = torch.where(present, hits / labelled.clamp(min=1), 0).sum(1) / classes_present.clamp(min=1)
        iou = torch.where(present, hits / union.clamp(min=1), 0).sum(1) / classes_present.clamp(min=1)
        pixel = hits.sum(1) / labelled.sum(1).clamp(min=1)
        scored = (classes_present > 0).double()
        sums = torch.stack([(pixel * scored).sum(), (per_class * scored).sum(), (iou * scored).sum(), scored.sum()])
        self.sums = sums if self.sums is None else self.sums + sums

    def scores(self) -> dict[str, float]:
        """The means over images of pixel_accuracy, class_accuracy and iou; NaN when nothing was scored."""
        if self.sums is None or self.sums[3] == 0:
            return dict.fromkeys(("pixel_accuracy", "class_accuracy", "iou"), float("nan"))
        pixel, per_class, iou, images = self.sums.cpu().tolist()
        return {"pixel_accuracy": pixel / images, "class_accuracy": per_class / images, "iou": iou / images}


def score_keeper(average: str, classes: int, ignore_index: int = -1) -> ConfusionMatrix | PerImageMeans:
    """The accumulator of a segmentation metric's `average`: "split" or "image"."""
    return PerImageMeans(classes, ignore_index) if average == "image" else ConfusionMatrix(classes, ignore_index)
