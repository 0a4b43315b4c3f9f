"""The FCN-score's real-photo reference: ESPNet on the real Cityscapes val photos of the pix2pix files, scored
against their colour label maps, through the `fcn_score` metric as an evaluation runs it (labels -> photo,
"b2a": the label map is the input, the real photo both output and real image).

Each pix2pix file is 512x256: the photo on the left half, the colour-coded label map on the right half.

    python benchmarks/fcn_reference.py --data ../shared/data/cityscapes_pix2pix/val \
        --weights ../shared/weights/espnet_p_2_q_8_cityscapes.pth
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from p2pcore import load_host
from p2pcore.api import CITYSCAPES_VOID_COLOURS, Comparison

IGNORED = {"none": [], "black": [[0, 0, 0]], "void": [list(c) for c in CITYSCAPES_VOID_COLOURS]}


def read_pair(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(photo, label map) of one side-by-side file, 3 x H x W in [-1, 1]."""
    with Image.open(path) as image:
        both = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1).float() / 127.5 - 1
    half = both.shape[-1] // 2
    return both[..., :half], both[..., half:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cityscapes_pix2pix/val"))
    parser.add_argument("--weights", type=Path, default=Path("../shared/weights/espnet_p_2_q_8_cityscapes.pth"))
    parser.add_argument("--limit", type=int, default=0, help="first N files only (0: all)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"),
                        help="the segmenter's working size (`size` of espnet)")
    parser.add_argument("--ignore", choices=sorted(IGNORED), default="none",
                        help="label pixels not scored: none, black (the car's bonnet) or every Cityscapes void colour")
    parser.add_argument("--average", choices=("split", "image"), default="split", help="`average` of fcn_score")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    files = sorted(args.data.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))[:args.limit or None]
    segmenter = {"name": "espnet", "weights": str(args.weights), "size": list(args.size)}
    metric = load_host().build("metric", {"name": "fcn_score", "segmenter": segmenter, "average": args.average,
                                          "ignore_colors": IGNORED[args.ignore]})
    metric.to(args.device).eval()
    metric.reset()
    start = time.perf_counter()
    for i in range(0, len(files), args.batch):
        pairs = [read_pair(path) for path in files[i:i + args.batch]]
        photos, labels = (torch.stack(x).to(args.device) for x in zip(*pairs, strict=True))
        metric.update(Comparison(direction="b2a", input=labels, output=photos, real=photos, target=photos))
    figures = metric.compute()
    seconds = time.perf_counter() - start
    print(json.dumps({"files": len(files), "device": args.device, "size": list(args.size),
                      "ignore": args.ignore, "average": args.average, "seconds": round(seconds, 1),
                      **{k: round(v, 4) for k, v in figures.items() if not k.startswith("real/")}}))


if __name__ == "__main__":
    main()
