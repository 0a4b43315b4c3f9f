"""p2p's `espnet` segmenter against the ESPNet authors' own model code, on the same weight file.

The authors' repository (sacmehta/ESPNet, never a dependency of p2p) is given by its folder; its
`test/Model.py` builds their network. Both load the same state dict and see the same inputs: random tensors
(the logits must be equal), then real Cityscapes photos, each side preprocessed its own way (p2p's
`preprocess` against the authors' recipe: BGR, minus mean, over std, resized, divided by 255), where the
predicted classes are compared.

    python benchmarks/espnet_against_authors.py /path/to/ESPNet --photos 20
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from p2pcore import load_host

MEAN, STD = (72.3923111, 82.90893555, 73.15840149), (45.3192215, 46.15289307, 44.91483307)  # BGR, 0-255


def authors_input(photo: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The authors' test-time preprocessing of an RGB uint8 photo: BGR, standardised, resized, /255."""
    bgr = torch.from_numpy(photo[:, :, ::-1].astype(np.float32)).permute(2, 0, 1)[None]
    x = (bgr - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False) / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("espnet_src", type=Path, help="the ESPNet authors' repository folder")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cityscapes_pix2pix/val"))
    parser.add_argument("--weights", type=Path, default=Path("../shared/weights/espnet_p_2_q_8_cityscapes.pth"))
    parser.add_argument("--photos", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(args.espnet_src / "test"))
    theirs = importlib.import_module("Model").ESPNet(20, 2, 8)
    theirs.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    segmenter = load_host().build("segmenter", {"name": "espnet", "weights": str(args.weights)})
    ours, size = segmenter.net, tuple(segmenter.size)
    theirs.eval(), ours.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
        a, b = theirs(x), ours(x)
        print(f"random inputs {tuple(x.shape)}: logits {tuple(a.shape)} and {tuple(b.shape)}, largest difference "
              f"{(a - b).abs().max().item():.3g} (largest logit {a.abs().max().item():.3g})")
        agree = total = 0
        files = sorted(args.data.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))[:args.photos]
        for path in files:
            with Image.open(path) as image:
                pair = np.asarray(image.convert("RGB"))
            photo = pair[:, :pair.shape[1] // 2]
            mine = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
            mine = F.interpolate(segmenter.preprocess(mine), size=size, mode="bilinear", align_corners=False)
            same = theirs(authors_input(photo, size)).argmax(1) == ours(mine).argmax(1)
            agree, total = agree + int(same.sum()), total + same.numel()
        print(f"{len(files)} real photos at {size[0]} x {size[1]}: the same class at {agree / total:.5f} of pixels")


if __name__ == "__main__":
    main()
