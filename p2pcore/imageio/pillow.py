"""Opening files with Pillow (header only, through the class of the format p2p lists) and turning
decoded images upright as their EXIF orientation says, as ``PIL.ImageOps.exif_transpose`` does."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from PIL import Image

from p2pcore.imageio.headers import _ORIENTATION, _PNG_SIGNATURE
from p2pcore.imageio.limits import _pillow_refused, max_image_pixels

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8) of an opened, not yet decoded, image; 1 when it has none."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # only an eXIf chunk before the image data counts; Pillow would decode to look further
    try:
        value = image.getexif().get(_ORIENTATION, 1)
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, OSError, EOFError, struct.error):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """A C x H x W image turned as its EXIF orientation says, as ``PIL.ImageOps.exif_transpose`` turns it."""
    if orientation == 1:
        return image
    turns: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
        2: lambda x: x.flip(2),  # mirrored left-right
        3: lambda x: x.flip((1, 2)),  # 180 degrees
        4: lambda x: x.flip(1),  # mirrored top-bottom
        5: lambda x: x.transpose(1, 2),  # mirrored along the main diagonal
        6: lambda x: x.rot90(-1, (1, 2)),  # 90 degrees clockwise
        7: lambda x: x.flip((1, 2)).transpose(1, 2),  # mirrored along the other diagonal
        8: lambda x: x.rot90(1, (1, 2)),  # 90 degrees counter-clockwise
    }
    return turns[orientation](image).contiguous()


def _pil_plugin(head: bytes) -> Callable[[str], Image.Image] | None:
    """The Pillow image class for a file of the formats p2p lists, recognised by its first bytes."""
    from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin, PpmImagePlugin, TiffImagePlugin

    if head.startswith(_PNG_SIGNATURE):
        return PngImagePlugin.PngImageFile
    if head.startswith(b"\xff\xd8\xff"):
        return JpegImagePlugin.JpegImageFile
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TiffImagePlugin.TiffImageFile
    if head.startswith(b"BM"):
        return BmpImagePlugin.BmpImageFile
    if len(head) > 1 and head[:1] == b"P" and head[1:2] in b"123456":
        return PpmImagePlugin.PpmImageFile
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        try:
            from PIL import WebPImagePlugin
        except ImportError:  # pragma: no cover - Pillow built without WebP
            return None
        return WebPImagePlugin.WebPImageFile
    return None


def _pil_open(path: str) -> Image.Image:
    """Open a file with Pillow, reading its header only.

    The formats p2p lists open through their Pillow class directly, without ``Image.open``'s
    decompression-bomb check: the caller checks the declared size against :func:`max_image_pixels`,
    so that the error is p2p's, naming the file and the limit. Other files go through ``Image.open``,
    whose limit is set to the same value; its refusal becomes the same error.
    """
    with open(path, "rb") as f:
        head = f.read(16)
    plugin = _pil_plugin(head)
    max_image_pixels()
    try:
        return plugin(path) if plugin is not None else Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _pillow_refused(path, exc) from None
