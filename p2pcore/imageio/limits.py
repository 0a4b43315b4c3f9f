"""How large an image p2p decodes, and the errors that name a file it refuses.

The limit is the environment variable ``P2P_MAX_IMAGE_PIXELS`` (read at each check; default 100 million
pixels), checked against what a header declares before any pixel is decoded. Pillow's own limit,
``PIL.Image.MAX_IMAGE_PIXELS``, is kept equal to it, so Pillow never decodes what p2p would refuse.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from PIL import Image

from p2pcore.errors import P2PError

MAX_PIXELS_ENV = "P2P_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 100_000_000
_CORRUPT_HINT = "the file is corrupt, truncated or not an image; replace or remove it"


def max_image_pixels() -> int:
    """The most pixels one image may declare: the environment variable ``P2P_MAX_IMAGE_PIXELS`` (a whole
    number, read on each call) or 100 million. Pillow's ``Image.MAX_IMAGE_PIXELS`` is set to the same value."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    limit = DEFAULT_MAX_PIXELS
    if text:
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 1 and value == int(value)):
            raise P2PError(f"{MAX_PIXELS_ENV} must be a whole number of pixels, not {text!r}",
                           hint=f"for example {MAX_PIXELS_ENV}=400000000 (400 megapixels); unset, the limit is "
                                f"{DEFAULT_MAX_PIXELS:,} pixels per image")
        limit = int(value)
    Image.MAX_IMAGE_PIXELS = limit
    return limit


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.6g}"


def _too_large(path: str, size: str, pixels: int, limit: int) -> P2PError:
    return P2PError(f"the image declares {size} ({_megapixels(pixels)} megapixels), more than the limit of "
                    f"{_megapixels(limit)} megapixels per image (the environment variable {MAX_PIXELS_ENV} "
                    "raises it)", file=path,
                    hint=f"if the image is genuine, set {MAX_PIXELS_ENV}={pixels} or more; otherwise replace or "
                         "remove the file")


def _check_size(path: str, width: int, height: int, channels: int = 1) -> None:
    """Refuse an image whose header declares more pixels than :func:`max_image_pixels`, before decoding."""
    limit = max_image_pixels()
    pixels = width * height * max(1, -(-channels // 4))
    if pixels > limit:
        stack = f" x {channels} channels, 4 channels to a pixel" if channels > 4 else ""
        raise _too_large(path, f"{width} x {height} pixels{stack}", pixels, limit)


def _pillow_refused(path: str, exc: Exception) -> P2PError:
    """Pillow's DecompressionBombError (or its warning, made an error) as p2p's error."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = int(found[1]) if found else 0
    return _too_large(path, f"{pixels} pixels" if pixels else "more pixels than allowed", pixels, max_image_pixels())


try:
    max_image_pixels()
except P2PError:  # a malformed variable is reported when an image is checked
    Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS


def _unreadable(path: str, exc: BaseException | str) -> P2PError:
    reason = str(exc)
    if "cannot identify image file" in reason:  # Pillow's words, with a file object's repr in them
        reason = "the file is empty" if Path(path).stat().st_size == 0 else "not a recognised image format"
    return P2PError(f"cannot read image: {reason}", file=path, hint=_CORRUPT_HINT)
