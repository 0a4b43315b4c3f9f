"""The FCN-score's real-photo reference: ESPNet on the real Cityscapes val photos of the pix2pix files, scored
against their colour label maps, through the `fcn_score` metric as an evaluation runs it (labels -> photo,
"b2a": the label map is the input, the real photo both output and real image).

Each pix2pix file is 512x256: the photo on the left half, the colour-coded label map on the right half.

    python benchmarks/fcn_reference.py --data ../shared/data/cityscapes_pix2pix/val \
        --weights ../shared/weights/espnet_p_2_q_8_cityscapes.pth

With `--load-size`, the files are read as an evaluation reads them: the test split of the `aligned` adapter
(`resize_and_crop`, crop_size 256), so the whole image at 256 x 256; `--test-crop` crops it as training does,
as test splits did before they kept the whole image (load 286: a centre crop of the 286 x 286 resize).
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
    parser.add_argument("--load-size", type=int, default=0, help="read through the aligned adapter's test "
                        "split (resize_and_crop to LOAD, crop 256), as an evaluation does (0: the files as they are)")
    parser.add_argument("--test-crop", action="store_true", help="with --load-size: crop the test split as "
                        "training does (data.test_crop)")
    args = parser.parse_args()

    files = sorted(args.data.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))[:args.limit or None]
    read = read_pair
    if args.load_size:
        adapter = load_host().build("dataset", {
            "name": "aligned", "root": str(args.data.parent), "direction": "BtoA", "preprocess": "resize_and_crop",
            "load_size": args.load_size, "crop_size": 256, "test_crop": args.test_crop})
        items = adapter.dataset(args.data.name, train=False)
        index = {name: i for i, name in enumerate(items.names)}

        def read(path: Path) -> tuple[torch.Tensor, torch.Tensor]:  # (photo, label map) as [eval] sees them
            item = items[index[path.stem]]
            return item["b"], item["a"]
    segmenter = {"name": "espnet", "weights": str(args.weights), "size": list(args.size)}
    metric = load_host().build("metric", {"name": "fcn_score", "segmenter": segmenter, "average": args.average,
                                          "ignore_colors": IGNORED[args.ignore]})
    metric.to(args.device).eval()
    metric.reset()
    start = time.perf_counter()
    for i in range(0, len(files), args.batch):
        pairs = [read(path) for path in files[i:i + args.batch]]
        photos, labels = (torch.stack(x).to(args.device) for x in zip(*pairs, strict=True))
        metric.update(Comparison(direction="b2a", input=labels, output=photos, real=photos, target=photos))
    figures = metric.compute()
    seconds = time.perf_counter() - start
    print(json.dumps({"files": len(files), "device": args.device, "size": list(args.size),
                      "load_size": args.load_size or None, "test_crop": args.test_crop,
                      "ignore": args.ignore, "average": args.average, "seconds": round(seconds, 1),
                      **{k: round(v, 4) for k, v in figures.items() if not k.startswith("real/")}}))


if __name__ == "__main__":
    main()
