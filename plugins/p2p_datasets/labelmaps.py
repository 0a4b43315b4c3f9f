"""Label and instance maps as pix2pixHD reads them: integer ids, never normalised.

A label-map item's `label` image is float32 C x H x W holding ids exactly: channel 0 the semantic label
id of each pixel and, when the dataset has instance maps, channel 1 the instance id. Instance ids follow
Cityscapes: a pixel of an object ("thing") instance holds label id * 1000 + its number, other pixels
their label id. Jitter resizes label maps with nearest-neighbour sampling, so ids stay ids.

Files: the label map of an image is a 1-channel 8- or 16-bit image of ids (Cityscapes'
``*_gtFine_labelIds.png``); its instance map the file beside it whose name has ``_instanceIds`` in place
of ``_labelIds`` (``*_gtFine_instanceIds.png``, 16-bit).

Sample grids show label maps in the Cityscapes colour palette (ids beyond it in generated colours).
"""

from __future__ import annotations

import colorsys
import functools
from pathlib import Path

import torch

from p2pcore.api import P2PError

from .imagefiles import load_image

# Colours of Cityscapes' labelIds 0..33 (cityscapesScripts' labels.py); 34 is the licence plate.
CITYSCAPES_COLORS = (
    (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (111, 74, 0), (81, 0, 81), (128, 64, 128),
    (244, 35, 232), (250, 170, 160), (230, 150, 140), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (180, 165, 180), (150, 100, 100), (150, 120, 90), (153, 153, 153), (153, 153, 153), (250, 170, 30),
    (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142),
    (0, 0, 70), (0, 60, 100), (0, 0, 90), (0, 0, 110), (0, 80, 100), (0, 0, 230), (119, 11, 32), (0, 0, 142))
CITYSCAPES_LABEL_NC = len(CITYSCAPES_COLORS)   # 35: pix2pixHD's label_nc for Cityscapes
LABEL_PART, INSTANCE_PART = "_labelIds", "_instanceIds"


@functools.cache
def palette(count: int = 256) -> torch.Tensor:
    """count x 3 uint8: Cityscapes' colours for ids 0..34, then colours spread around the hue circle."""
    colors = list(CITYSCAPES_COLORS[:count])
    for i in range(len(colors), count):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.55 + 0.45 * (i % 3) / 2, 0.6 + 0.4 * (i % 2))
        colors.append((round(255 * r), round(255 * g), round(255 * b)))
    return torch.tensor(colors, dtype=torch.uint8)


def colorize(ids: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W (or H x W) label ids to N x 3 x H x W (3 x H x W) colours in [-1, 1]."""
    lut = palette(256).to(ids.device)
    rgb = lut[ids.round().long().clamp(0, 255)].to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)
    if ids.dim() == 4:
        return rgb[:, 0].permute(0, 3, 1, 2).contiguous()
    return rgb.permute(2, 0, 1).contiguous()


def display(images: torch.Tensor, key: str) -> torch.Tensor:
    """Sample-grid view of a batch: label maps in the palette, photos as they are."""
    return colorize(images[:, :1]) if key == "label" else images


def instance_file(label_file: Path) -> Path:
    """The instance map stored beside a label map (``_labelIds`` read as ``_instanceIds``)."""
    if LABEL_PART not in label_file.name:
        raise P2PError(f"cannot tell which file holds this label map's instances (its name has no {LABEL_PART})",
                       file=str(label_file), hint=f"name label maps *{LABEL_PART}.png and their instance maps "
                                                  f"*{INSTANCE_PART}.png, as Cityscapes does")
    return label_file.with_name(label_file.name.replace(LABEL_PART, INSTANCE_PART))


def _ids(path: Path, what: str) -> torch.Tensor:
    raw = load_image(path)
    if raw.shape[0] != 1 or raw.dtype.is_floating_point:
        kind = "floating-point" if raw.dtype.is_floating_point else f"{raw.shape[0]}-channel"
        raise P2PError(f"a {what} must be a 1-channel image of integer ids, this one is {kind}", file=str(path),
                       hint="use the *_labelIds.png / *_instanceIds.png files, not the colour-coded ones")
    return raw.to(torch.int64)


def read_label_maps(label_file: str | Path, *, instances: bool) -> torch.Tensor:
    """A label map (and the instance map beside it) as float32 ids, 1 (2) x H x W."""
    label_file = Path(label_file)
    maps = [_ids(label_file, "label map")]
    if instances:
        inst_file = instance_file(label_file)
        if not inst_file.is_file():
            raise P2PError("the instance map of this label map is missing", file=str(inst_file),
                           hint=f"it is read beside {label_file.name}; set data.instances = false to train "
                                "without instance maps")
        maps.append(_ids(inst_file, "instance map"))
        if maps[1].shape != maps[0].shape:
            raise P2PError(f"the instance map is {maps[1].shape[-1]}x{maps[1].shape[-2]} but its label map "
                           f"{maps[0].shape[-1]}x{maps[0].shape[-2]}", file=str(inst_file),
                           hint="label and instance maps of an image must have the same size")
    return torch.cat(maps).to(torch.float32)
