"""Reading a file's header (:func:`probe_image`): size, channels, bits per sample, without decoding
pixels, except to confirm that a PNG or JPEG lacking its end marker really is cut short."""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import UnidentifiedImageError

from p2pcore.errors import P2PError
from p2pcore.imageio.decode import load_image
from p2pcore.imageio.headers import _PNG_SIGNATURE, ImageInfo, _mode_info, _probe_npy, _probe_png, _tiff_bits
from p2pcore.imageio.limits import _check_size, _unreadable
from p2pcore.imageio.pillow import _orientation, _pil_open

_TAIL_BYTES = 4096


def _tail_complete(path: str, fmt: str) -> bool:
    """Whether a PNG or JPEG file ends with its end marker (within the last few KiB)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - _TAIL_BYTES))
        tail = f.read()
    if fmt == "PNG":
        return b"IEND\xaeB`\x82" in tail
    if fmt == "JPEG":
        return b"\xff\xd9" in tail
    return True


def probe_image(path: str | Path) -> ImageInfo:
    """Read a file's header; raise :class:`P2PError` naming the file if it is missing or damaged, or if
    it declares more pixels than :func:`max_image_pixels` allows.

    Width and height are those of the upright image (after its EXIF orientation). PNG and JPEG files
    whose last bytes lack the end marker are decoded in full to confirm truncation, so a file that
    passes is very likely whole. No other pixels are decoded.
    """
    path = str(path)
    try:
        with open(path, "rb") as f:
            if path.lower().endswith(".npy"):
                info = _probe_npy(f, path)
            else:
                head = f.read(33)
                info = _probe_png(f, head, path) if head.startswith(_PNG_SIGNATURE) else None
        if info is None:
            with _pil_open(path) as image:
                channels, bits, sample = _mode_info(image.mode)
                pages = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
                if image.format == "TIFF" and image.mode == "RGB" and 16 in _tiff_bits(image):
                    bits = 16
                width, height = image.size
                if image.format == "TIFF":  # the stored size: Pillow may already give a TIFF's upright size
                    width, height = image.tag_v2.get(256, width), image.tag_v2.get(257, height)
                if _orientation(image) >= 5:
                    width, height = height, width
                info = ImageInfo(width, height, channels * pages, bits, sample, image.format or "", pages)
    except FileNotFoundError:
        raise P2PError("image file not found", file=path, hint="check the path and the data root") from None
    except P2PError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise _unreadable(path, exc) from None
    _check_size(path, info.width, info.height, info.channels)
    if info.format in ("PNG", "JPEG") and not _tail_complete(path, info.format):
        load_image(path)  # raises when the data really is cut short
    return info
