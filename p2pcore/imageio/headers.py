"""What a file's header says, read without decoding pixels: PNG chunks, ``.npy`` headers, Pillow modes.

:class:`ImageInfo` is the answer; the helpers here read one format's header each and are shared by the
probe (:mod:`p2pcore.imageio.probe`) and the decoder (:mod:`p2pcore.imageio.decode`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from p2pcore.errors import P2PError
from p2pcore.imageio.limits import _unreadable

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels (palette expands to RGB)
_PNG_CHUNKS_PROBED = 256  # ancillary chunks looked at before the image data (for tRNS and eXIf)
_EXIF_BYTES = 1 << 20  # larger eXIf chunks are not read by the probe
_ORIENTATION = 0x0112  # the EXIF orientation tag


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header says: size, channels (after palette expansion), bits per sample.

    `sample` is "uint", "int" or "float"; `pages` is the number of TIFF pages or 1.
    """

    width: int
    height: int
    channels: int
    bits: int
    sample: str
    format: str
    pages: int = 1

    @property
    def depth(self) -> str:
        """Bits and sample type in words, e.g. "8-bit", "16-bit", "32-bit float"."""
        return f"{self.bits}-bit" + (" float" if self.sample == "float" else "")


def _exif_orientation(data: bytes) -> int:
    exif = Image.Exif()
    try:
        exif.load(data)
        value = exif.get(_ORIENTATION, 1)
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, OSError, EOFError, struct.error):
        return 1  # damaged EXIF data leaves the pixels readable, as stored
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _mode_info(mode: str) -> tuple[int, int, str]:
    """(channels, bits, sample type) of a Pillow mode, as :func:`load_image` will return it."""
    if mode.startswith("I;16"):
        return 1, 16, "uint"
    table = {"1": (1, 8, "uint"), "L": (1, 8, "uint"), "P": (3, 8, "uint"), "PA": (4, 8, "uint"),
             "LA": (2, 8, "uint"), "La": (2, 8, "uint"), "RGB": (3, 8, "uint"), "RGBA": (4, 8, "uint"),
             "RGBa": (4, 8, "uint"), "RGBX": (3, 8, "uint"), "CMYK": (3, 8, "uint"), "YCbCr": (3, 8, "uint"),
             "LAB": (3, 8, "uint"), "HSV": (3, 8, "uint"), "I": (1, 32, "int"), "F": (1, 32, "float")}
    if mode not in table:
        raise ValueError(f"unsupported pixel mode {mode!r}")
    return table[mode]


def _probe_png(f: Any, head: bytes, path: str) -> ImageInfo:
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise _unreadable(path, "PNG header is damaged")
    width, height, bits, colour = struct.unpack(">IIBB", head[16:26])
    if colour not in _PNG_CHANNELS or width == 0 or height == 0:
        raise _unreadable(path, "PNG header is damaged")
    channels = _PNG_CHANNELS[colour]
    transparency, orientation = _png_chunks(f)
    if colour == 3:  # a palette with a transparency chunk expands to RGBA
        bits = 8
        if transparency:
            channels = 4
    elif bits < 8:
        bits = 8  # 1, 2 and 4-bit grey expand to 8 bits
    if orientation >= 5:
        width, height = height, width
    return ImageInfo(width, height, channels, bits, "uint", "PNG")


def _png_chunks(f: Any) -> tuple[bool, int]:
    """Whether a PNG has a tRNS chunk before its image data, and the EXIF orientation of an eXIf chunk there."""
    transparency, orientation = False, 1
    f.seek(33)
    for _ in range(_PNG_CHUNKS_PROBED):
        chunk = f.read(8)
        if len(chunk) < 8 or chunk[4:8] in (b"IDAT", b"IEND"):
            break
        length = struct.unpack(">I", chunk[:4])[0]
        if chunk[4:8] == b"tRNS":
            transparency = True
        elif chunk[4:8] == b"eXIf" and length <= _EXIF_BYTES:
            orientation = _exif_orientation(f.read(length))
            f.seek(4, 1)  # the CRC
            continue
        f.seek(length + 4, 1)
    return transparency, orientation


def _probe_npy(f: Any, path: str) -> ImageInfo:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    h, w, c = _npy_layout(shape, path)
    bits, sample = _dtype_depth(np.dtype(dtype), path)
    return ImageInfo(w, h, c, bits, sample, "NPY")


def _npy_layout(shape: tuple[int, ...], path: str) -> tuple[int, int, int]:
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 3:
        if shape[0] < shape[2]:
            return shape[1], shape[2], shape[0]
        return shape[0], shape[1], shape[2]
    raise P2PError(f"a .npy image must have 2 or 3 dimensions, this one has shape {tuple(shape)}", file=path,
                   hint="save arrays as H x W, H x W x C or C x H x W")


def _dtype_depth(dtype: np.dtype, path: str) -> tuple[int, str]:
    if dtype == np.bool_ or dtype == np.uint8:
        return 8, "uint"
    if dtype == np.uint16:
        return 16, "uint"
    if dtype.kind in "iu":
        return 32, "int"
    if dtype.kind == "f":
        return 32, "float"
    raise P2PError(f"unsupported array type {dtype}", file=path, hint="save integer or float arrays")


def _tiff_bits(image: Image.Image) -> tuple[int, ...]:
    value = getattr(image, "tag_v2", {}).get(258, (8,))
    return tuple(value) if isinstance(value, tuple | list) else (value,)
