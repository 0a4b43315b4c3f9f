"""Parameters and builders of the segmentation metrics: `segmentation_scores` (photo -> labels outputs against
their target label maps) and `fcn_score` (labels -> photo outputs segmented and scored against the input
labels, beside the real photos' score). Torch-free; builders import the implementation when a run needs it.

Figures: "pixel_accuracy" (scored pixels labelled right), "class_accuracy" (that fraction per class, averaged
over the classes present in the labels) and "iou" (intersection over union per class, averaged over the
classes present in labels or predictions); all higher-is-better, over the whole split, or with `average =
"image"` for each image (its classes: those of its labels) and then averaged. There is no single "" figure:
recipes name a part (`best = "fcn_score/iou"`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import model_validator

from p2pcore.api import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_COLOURS,
    BuildContext,
    Field,
    MetricParams,
    SegmenterRef,
)

PARTS = ("pixel_accuracy", "class_accuracy", "iou")
Level = Annotated[int, Field(ge=0, le=255)]
Colour = tuple[Level, Level, Level]

DECODING = ("a label map with 3 channels is colour-coded: each pixel takes the class of the nearest {palette} "
            "colour (Euclidean distance in RGB 0-255, so JPEG noise is forgiven), or is not scored when the "
            "nearest colour is one of `ignore_colors`; a label map with one channel per class takes the class "
            "of its largest channel; a one-channel map holds class k as the level -1 + 2k/K (K classes; the "
            "level 1 = class K is not scored), as the cityscapes_labels dataset writes them")
AVERAGE = ('"split": one count of labelled and predicted pixels over the whole split, every scored pixel weighing '
           'alike (pix2pix\'s FCN-score); "image": each image scored on its own and the scores averaged over the '
           "images, class accuracy and IoU over the classes present in that image's labels")
IGNORE_COLORS = ("RGB colours (0-255) of unlabelled regions: label pixels nearest to one of them are not scored, "
                 "e.g. [[0, 0, 0]] for Cityscapes' black void. Empty by default: every label pixel takes its "
                 "nearest class colour")


class SegmentationScoresParams(MetricParams):
    classes: tuple[str, ...] = Field(CITYSCAPES_CLASSES, min_length=2, max_length=1024, description=(
        "class names, in label order (default: the 19 Cityscapes train IDs)"))
    palette: tuple[Colour, ...] = Field(CITYSCAPES_COLOURS, description=(
        "RGB colour (0-255) of each class in colour-coded label maps, one per class (default: the standard "
        "Cityscapes train-ID colours). Outputs and targets are decoded alike: " + DECODING.format(palette="`palette`")))
    ignore_colors: tuple[Colour, ...] = Field((), description=IGNORE_COLORS)
    ignore_index: int = Field(-1, ge=-1, description=(
        "index of a class scored nowhere (a 'void' entry of `classes`): target pixels of it are skipped and it "
        "is left out of the class averages; -1: none"))
    average: Literal["split", "image"] = Field("split", description=AVERAGE)

    @model_validator(mode="after")
    def _one_colour_per_class(self) -> SegmentationScoresParams:
        if len(self.palette) != len(self.classes):
            raise ValueError(f"`palette` has {len(self.palette)} colours for {len(self.classes)} classes: give "
                             "one per class")
        if self.ignore_index >= len(self.classes):
            raise ValueError(f"`ignore_index` {self.ignore_index} is not a class index (0 to "
                             f"{len(self.classes) - 1}, or -1 for none)")
        return self

    def figures(self) -> Mapping[str, bool]:
        return dict.fromkeys(PARTS, True)


class FcnScoreParams(MetricParams):
    segmenter: SegmenterRef = Field(description=(
        "the segmenter judging the generated photos (see `p2p list segmenter`), e.g. { name = \"espnet\", "
        "weights = \"espnet_p_2_q_8.pth\" }; photos are resized to the label map's size first, so predictions "
        "are made at the label map's resolution"))
    ignore_colors: tuple[Colour, ...] = Field((), description=(
        "input labels are decoded with the segmenter's palette: " + DECODING.format(palette="segmenter palette")
        + ". " + IGNORE_COLORS))
    average: Literal["split", "image"] = Field("split", description=AVERAGE)

    def figures(self) -> Mapping[str, bool]:
        return {**dict.fromkeys(PARTS, True), **{f"real/{part}": True for part in PARTS}}

    def paired(self) -> bool:
        return False


def build_segmentation_scores(params: SegmentationScoresParams, ctx: BuildContext) -> Any:
    """Pixel accuracy, class accuracy and mean IoU of output label maps against their targets (photo -> labels)."""
    from p2p_metrics.segmentation_scores import SegmentationScores

    return SegmentationScores(len(params.classes), params.palette, ignore_colors=params.ignore_colors,
                              ignore_index=params.ignore_index, average=params.average)


def build_fcn_score(params: FcnScoreParams, ctx: BuildContext) -> Any:
    """FCN-score (pix2pix): generated photos segmented and scored against their input labels, beside real photos."""
    from p2p_metrics.segmentation_scores import FcnScore

    key = f"{ctx.key}.segmenter" if ctx.key else "segmenter"
    return FcnScore(ctx.build(params.segmenter, key=key), ignore_colors=params.ignore_colors,
                    average=params.average)


def register_segmentation_metrics(register: Any) -> None:
    register("segmentation_scores", build_segmentation_scores, params=SegmentationScoresParams)
    register("fcn_score", build_fcn_score, params=FcnScoreParams)
