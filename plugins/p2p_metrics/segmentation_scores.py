"""`segmentation_scores` and `fcn_score`: confusion matrices over a split, read as pixel accuracy, class accuracy
and mean IoU (see :mod:`p2p_metrics.segmentation` for what each figure means)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from p2pcore.api import Comparison, Metric, P2PError

from .confusion import decode_labels, nearest_colour_table, score_keeper


class SegmentationScores(Metric):
    """Output label maps (photo -> labels) against their target label maps, both decoded to classes."""

    def __init__(self, classes: int, palette: Sequence[Sequence[int]], *,
                 ignore_colors: Sequence[Sequence[int]] = (), ignore_index: int = -1, average: str = "split") -> None:
        self.classes = classes
        self.colours, self.colour_classes = nearest_colour_table(palette, ignore_colors)
        self.confusion = score_keeper(average, classes, ignore_index)

    def reset(self) -> None:
        self.confusion.reset()

    def update(self, batch: Comparison) -> None:
        if batch.target is None:
            raise P2PError(f"the metric 'segmentation_scores' compares output label maps with target ones, but the "
                           f"direction {batch.direction!r} has no target",
                           hint="use it on a paired photo -> labels direction")
        if batch.output.shape[0] != batch.target.shape[0] or batch.output.shape[-2:] != batch.target.shape[-2:]:
            raise P2PError(f"the metric 'segmentation_scores' got outputs of shape {tuple(batch.output.shape)} and "
                           f"targets of shape {tuple(batch.target.shape)} in direction {batch.direction!r}")
        self.confusion.add(self._labels(batch.target, "targets", batch.direction),
                           self._labels(batch.output, "outputs", batch.direction))

    def _labels(self, maps: torch.Tensor, what: str, direction: str) -> torch.Tensor:
        return decode_labels(maps, self.classes, self.colours, self.colour_classes,
                             what=f"the {what} of direction {direction!r} (segmentation_scores)")

    def compute(self) -> dict[str, float]:
        return self.confusion.scores()


class FcnScore(nn.Module, Metric):
    """The FCN-score: the segmenter's predictions on generated photos and on real photos, each scored against the
    input label maps. A segmenter trained on real photos recognises good generations; the real photos' score is
    the ceiling to read the generated one against."""

    def __init__(self, segmenter: nn.Module, *, ignore_colors: Sequence[Sequence[int]] = (),
                 average: str = "split") -> None:
        super().__init__()
        self.segmenter = segmenter
        self.classes = len(segmenter.classes)
        colours, colour_classes = nearest_colour_table(segmenter.palette, ignore_colors)
        self.register_buffer("colours", colours, persistent=False)
        self.register_buffer("colour_classes", colour_classes, persistent=False)
        ignore = int(getattr(segmenter, "ignore_index", -1))
        self.generated = score_keeper(average, self.classes, ignore)
        self.real = score_keeper(average, self.classes, ignore)

    def train(self, mode: bool = True) -> FcnScore:
        return super().train(False)  # a fixed measure

    def reset(self) -> None:
        self.generated.reset()
        self.real.reset()

    def predict(self, photos: torch.Tensor, size: torch.Size, what: str, direction: str) -> torch.Tensor:
        """Classes the segmenter sees in `photos`, at the label maps' size."""
        if photos.ndim != 4 or photos.shape[1] != 3:
            raise P2PError(f"the FCN-score segments RGB photos, but the {what} of direction {direction!r} have shape "
                           f"{tuple(photos.shape)}", hint="use fcn_score on a labels -> photo direction")
        if photos.shape[-2:] != size:
            photos = F.interpolate(photos.float(), size=tuple(size), mode="bilinear", align_corners=False)
        with torch.no_grad():
            return self.segmenter(photos.float()).argmax(1)

    def update(self, batch: Comparison) -> None:
        labels = decode_labels(batch.input, self.classes, self.colours, self.colour_classes,
                               what=f"the input label maps of direction {batch.direction!r} (fcn_score)")
        for photos, confusion, what in ((batch.output, self.generated, "outputs"), (batch.real, self.real, "real")):
            if photos.shape[0] != labels.shape[0]:
                raise P2PError(f"the FCN-score got {labels.shape[0]} input label maps but {photos.shape[0]} {what} "
                               f"in direction {batch.direction!r}")
            confusion.add(labels, self.predict(photos, labels.shape[-2:], what, batch.direction))

    def compute(self) -> dict[str, float]:
        real = {f"real/{name}": value for name, value in self.real.scores().items()}
        return {**self.generated.scores(), **real}
