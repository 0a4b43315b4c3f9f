"""ESPNet's real-photo FCN-score under nine scoring protocols, from one pass over the Cityscapes val pairs.

The FCN-score depends on choices the pix2pix paper leaves implicit: which label pixels are scored (colour
labels decoded to the nearest of the 19 train-ID colours, or void colours left unscored) and what becomes of
the segmenter's 20th "other" output (dropped, counted as a wrong answer, or its pixels left unscored). This
script keeps one confusion count over (nearest of 29 colours, nearest of 19, 20-way prediction, 19-way
prediction) and derives every combination from it, so the protocols are compared on exactly the same
predictions. The `fcn_score` metric implements "nearest 19 / 19-way", with `ignore_colors` for the others.

    python benchmarks/fcn_protocols.py --size 256 512
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from p2pcore import load_host
from p2pcore.api import CITYSCAPES_VOID_COLOURS

BLACK = 19  # index of (0, 0, 0) among the 29 colours


def scores(confusion: torch.Tensor) -> tuple[float, float, float]:
    """Per-pixel accuracy, per-class accuracy and mean IoU of a 19 x K confusion (rows: labels)."""
    hits = torch.diagonal(confusion[:, :19])
    pixel = float(hits.sum() / confusion.sum())
    per_class = float(np.nanmean((hits / confusion.sum(1)).numpy()))
    iou = float(np.nanmean((hits / (confusion.sum(1) + confusion[:, :19].sum(0) - hits)).numpy()))
    return pixel, per_class, iou


def protocols(counts: torch.Tensor) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Every labels x "other" protocol from counts over (nearest of 29, nearest of 19, 20-way, 19-way)."""
    by_labels = {
        "nearest of 19": counts.sum(0),
        "void unscored": torch.stack([counts[c, c] for c in range(19)]),
        "black unscored": counts[[i for i in range(29) if i != BLACK]].sum(0),
    }
    out = {}
    for (labels, m), other in itertools.product(by_labels.items(), ("dropped", "counted wrong", "unscored")):
        confusion = {"dropped": m.sum(1), "counted wrong": m.sum(2), "unscored": m[:, :19, :].sum(2)}[other]
        out[(labels, other)] = scores(confusion)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cityscapes_pix2pix/val"))
    parser.add_argument("--weights", type=Path, default=Path("../shared/weights/espnet_p_2_q_8_cityscapes.pth"))
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    segmenter = load_host().build("segmenter", {"name": "espnet", "weights": str(args.weights),
                                                "size": list(args.size)})
    net = segmenter.net  # all 20 outputs, to score the "other" one too
    palette = torch.tensor([*segmenter.palette, *CITYSCAPES_VOID_COLOURS], dtype=torch.float32)
    files = sorted(args.data.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))[:args.limit or None]
    counts = torch.zeros(29 * 19 * 20 * 19, dtype=torch.float64)
    start = time.perf_counter()
    with torch.no_grad():
        for path in files:
            with Image.open(path) as image:
                pair = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1).float()
            photo, labels = pair[:, :, :pair.shape[-1] // 2], pair[:, :, pair.shape[-1] // 2:]
            x = F.interpolate(segmenter.preprocess(photo[None] / 127.5 - 1), size=tuple(args.size), mode="bilinear",
                              align_corners=False)
            logits = F.interpolate(net(x), size=labels.shape[-2:], mode="bilinear", align_corners=False)[0]
            distance = ((labels.permute(1, 2, 0).reshape(-1, 1, 3) - palette[None]) ** 2).sum(-1)
            index = (((distance.argmin(1) * 19 + distance[:, :19].argmin(1)) * 20 + logits.argmax(0).flatten()) * 19
                     + logits[:19].argmax(0).flatten())
            counts += torch.bincount(index, minlength=counts.numel()).double()
    seconds = time.perf_counter() - start
    print(f"{len(files)} photos, segmenter at {args.size[0]} x {args.size[1]}, {seconds:.0f} s")
    print("| labels scored | 20th output | pixel acc. | class acc. | mean IoU |")
    print("|---|---|---:|---:|---:|")
    for (labels, other), (pixel, per_class, iou) in protocols(counts.view(29, 19, 20, 19)).items():
        print(f"| {labels} | {other} | {pixel:.3f} | {per_class:.3f} | {iou:.3f} |")


if __name__ == "__main__":
    main()
