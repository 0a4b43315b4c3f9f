"""segmentation_scores, fcn_score and the espnet segmenter: confusion-matrix figures on hand-made label maps,
label decoding, accumulation, and the real weights on real Cityscapes photos (when ../shared is present)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED, needs_shared
from PIL import Image

from p2pcore.api import Comparison, P2PError
from p2pcore.recipe import load_recipe
from p2pcore.testing.metrics import check_metric

PALETTE = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
WEIGHTS = SHARED / "weights" / "espnet_p_2_q_8_cityscapes.pth"
VAL = SHARED / "data" / "cityscapes_pix2pix" / "val"
RECIPES = ROOT / "recipes"


def colour_map(ids: list[list[int]], palette=PALETTE) -> torch.Tensor:
    """1 x 3 x H x W image in [-1, 1] painting class ids with palette colours (id -1: black)."""
    table = torch.tensor((*palette, (0, 0, 0)), dtype=torch.float32)
    return (table[torch.tensor(ids)].permute(2, 0, 1)[None] / 127.5 - 1)


def scores_of(host, labels, outputs, **params) -> dict[str, float]:
    metric = host.build("metric", {"name": "segmentation_scores", "classes": ["r", "g", "b"],
                                   "palette": [list(c) for c in PALETTE], **params})
    metric.reset()
    for target, output in zip(labels, outputs, strict=True):
        metric.update(Comparison("a2b", input=target, output=output, real=target, target=target))
    return metric.compute()


def test_scores_by_hand(host):
    # labels: r r g g / r r g g ; predictions: r g g b / r r g g. Class b never labelled, predicted once.
    target = colour_map([[0, 0, 1, 1], [0, 0, 1, 1]])
    output = colour_map([[0, 1, 1, 2], [0, 0, 1, 1]])
    got = scores_of(host, [target], [output])
    # r: 4 labelled, 3 hit, predicted 3 -> IoU 3/4; g: 4 labelled, 3 hit, predicted 4 -> 3/5; b: 0 hit, union 1
    assert got["pixel_accuracy"] == pytest.approx(6 / 8)
    assert got["class_accuracy"] == pytest.approx((3 / 4 + 3 / 4) / 2)
    assert got["iou"] == pytest.approx((3 / 4 + 3 / 5 + 0) / 3)


def test_ignored_pixels_and_absent_class(host):
    # black label pixels are ignore colours: not scored, whatever is predicted there; class b absent from both
    target = colour_map([[0, -1, 1], [-1, 1, 1]])
    output = colour_map([[0, 1, 1], [0, 1, 0]])
    got = scores_of(host, [target], [output], ignore_colors=[[0, 0, 0]])
    # scored: (r->r), (g->g), (g->g), (g->r): r IoU 1/2 (union: label r, pred r at g), g IoU 2/3
    assert got["pixel_accuracy"] == pytest.approx(3 / 4)
    assert got["class_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert got["iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # an ignore_index class is skipped in labels and left out of the averages
    got = scores_of(host, [target], [output], ignore_colors=[[0, 0, 0]], ignore_index=0)
    assert got["pixel_accuracy"] == pytest.approx(2 / 3)
    assert got["class_accuracy"] == pytest.approx(2 / 3) and got["iou"] == pytest.approx(2 / 3)


def test_image_average_scores_each_image_then_averages(host):
    # image 1: labels r r g g, predictions r g g g; image 2: labels b b b b, predictions b b b r
    first = (colour_map([[0, 0, 1, 1]]), colour_map([[0, 1, 1, 1]]))
    second = (colour_map([[2, 2, 2, 2]]), colour_map([[2, 2, 2, 0]]))
    targets, outputs = [torch.cat([first[0], second[0]])], [torch.cat([first[1], second[1]])]
    got = scores_of(host, targets, outputs, average="image")
    # image 1: pixel 3/4, classes r 1/2 and g 2/2, IoU r 1/2 and g 2/3; image 2: pixel 3/4, class b 3/4,
    # IoU b 3/4 (r, predicted once but absent from its labels, has no score of its own there)
    assert got["pixel_accuracy"] == pytest.approx(3 / 4)
    assert got["class_accuracy"] == pytest.approx(((1 / 2 + 1) / 2 + 3 / 4) / 2)
    assert got["iou"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 3 / 4) / 2)
    split = scores_of(host, targets, outputs)  # one count over both images weighs pixels, not images
    assert split["class_accuracy"] == pytest.approx((1 / 2 + 1 + 3 / 4) / 3)
    # images apart or in one batch, an image with nothing scored left out
    black = colour_map([[-1, -1, -1, -1]])
    apart = scores_of(host, [first[0], black, second[0]], [first[1], black, second[1]], average="image",
                      ignore_colors=[[0, 0, 0]])
    assert apart == pytest.approx(got)


def test_nothing_scored_is_nan(host):
    black = colour_map([[-1, -1]])
    for average in ("split", "image"):
        got = scores_of(host, [black], [black], ignore_colors=[[0, 0, 0]], average=average)
        assert all(math.isnan(v) for v in got.values())


def test_decoding_nearest_colour_channels_and_levels():
    from p2p_metrics.confusion import decode_labels, nearest_colour_table

    colours, classes = nearest_colour_table(PALETTE, [(0, 0, 0)])
    noisy = torch.tensor([[200, 40, 30], [30, 180, 60], [20, 20, 20], [10, 10, 250]], dtype=torch.float32)
    image = (noisy.T.reshape(1, 3, 1, 4) / 127.5 - 1)
    assert decode_labels(image, 3, colours, classes, what="x").tolist() == [[[0, 1, -1, 2]]]
    scores = torch.tensor([[0.1, 0.9, -1.0], [2.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 2)
    five = torch.cat([scores, torch.zeros(1, 2, 1, 2)], 1)  # 5 classes: 5 channels, argmax
    assert decode_labels(five, 5, colours, classes, what="x").tolist() == [[[1, 0]]]
    levels = torch.tensor([-1 + 2 * k / 19 for k in (0, 7, 18, 19)]).reshape(1, 1, 1, 4)
    assert decode_labels(levels, 19, colours, classes, what="x").tolist() == [[[0, 7, 18, 19]]]
    with pytest.raises(P2PError, match="2 channels"):
        decode_labels(torch.zeros(1, 2, 2, 2), 5, colours, classes, what="x")


def test_batches_accumulate_like_one_pass(host):
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(0, 3, (1, 6, 5), generator=g) for _ in range(6)]
    maps = [colour_map(t[0].tolist()) for t in ids]
    targets, outputs = maps[:3], maps[3:]
    apart = scores_of(host, targets, outputs)
    together = scores_of(host, [torch.cat(targets)], [torch.cat(outputs)])
    assert apart == pytest.approx(together)
    assert 0 < apart["pixel_accuracy"] < 1
    check_metric(host, "segmentation_scores")  # the metric contract on random images


def test_params_refuse_mismatched_palette(host):
    with pytest.raises(Exception, match="colours for 3 classes"):
        host.build("metric", {"name": "segmentation_scores", "classes": ["a", "b", "c"], "palette": [[0, 0, 0]]})


class _Oracle(torch.nn.Module):
    """A segmenter that 'sees' the class of each pixel by its nearest palette colour: photos equal to the label
    maps are segmented perfectly."""

    classes = ("r", "g", "b")
    palette = PALETTE
    ignore_index = -1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        table = torch.tensor(PALETTE, dtype=torch.float32) / 127.5 - 1
        return -((images[:, None] - table[None, :, :, None, None]) ** 2).sum(2)


def test_fcn_score_parts_and_resizing():
    from p2p_metrics.segmentation_scores import FcnScore

    metric = FcnScore(_Oracle())
    labels = colour_map([[0, 0, 1, 1], [2, 2, 1, 1]])
    wrong = colour_map([[1, 1, 1, 1], [1, 1, 1, 1]])
    big = torch.nn.functional.interpolate(labels, scale_factor=2, mode="nearest")  # photos at twice the size
    metric.reset()
    metric.update(Comparison("b2a", input=labels, output=wrong, real=big, target=big))
    got = metric.compute()
    assert set(got) == {"pixel_accuracy", "class_accuracy", "iou", "real/pixel_accuracy", "real/class_accuracy",
                        "real/iou"}
    assert got["real/pixel_accuracy"] == 1.0 and got["real/iou"] == 1.0
    assert got["pixel_accuracy"] == pytest.approx(4 / 8)
    assert got["iou"] == pytest.approx((0 + 4 / 8 + 0) / 3)


def test_missing_and_mismatched_weights(host, tmp_path: Path):
    with pytest.raises(P2PError, match="not there") as missing:
        host.build("segmenter", {"name": "espnet", "weights": str(tmp_path / "none.pth")})
    assert "weights" in (missing.value.key or "") and "none.pth" in (missing.value.file or "")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(P2PError, match="cannot read"):
        host.build("segmenter", {"name": "espnet", "weights": str(corrupt)})
    other = tmp_path / "other.pth"
    torch.save({"encoder.level1.conv.weight": torch.zeros(8, 3, 3, 3)}, other)
    with pytest.raises(P2PError, match=r"encoder.level1.conv.weight has shape \(8, 3, 3, 3\)") as wrong:
        host.build("segmenter", {"name": "espnet", "weights": str(other)})
    assert wrong.value.file == str(other)


@needs_shared("weights", "espnet_p_2_q_8_cityscapes.pth")
@needs_shared("data", "cityscapes_pix2pix", "val")
def test_espnet_on_real_photos_scores_near_the_reference(host):
    photos, labels = [], []
    for i in range(1, 9):
        with Image.open(VAL / f"{i}.jpg") as image:
            both = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1).float() / 127.5 - 1
        photos.append(both[..., :256])
        labels.append(both[..., 256:])
    recipe = load_recipe(RECIPES / "cityscapes_labels2photo.toml", host,
                         [f"eval.metrics.1.segmenter.weights={json.dumps(str(WEIGHTS))}"])
    metric = host.build("metric", recipe.eval.metrics[1])  # void colours unscored, each image scored on its own
    metric.eval().reset()
    photos, labels = torch.stack(photos), torch.stack(labels)
    with torch.no_grad():
        metric.update(Comparison("b2a", input=labels, output=photos.flip(-1), real=photos, target=photos))
    got = metric.compute()
    # the whole val split measures 0.724 / 0.306 / 0.228 so (BENCHMARKS.md); these 8 images 0.72 / 0.29 / 0.22
    assert 0.65 < got["real/pixel_accuracy"] < 0.80
    assert 0.22 < got["real/class_accuracy"] < 0.40
    assert 0.15 < got["real/iou"] < 0.30
    assert got["pixel_accuracy"] < got["real/pixel_accuracy"] - 0.1  # mirrored photos do not fit their labels
