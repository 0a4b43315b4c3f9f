"""Image files as tensors, without loss of precision.

Three layers, each usable alone:

* :func:`probe_image` reads a file's header (and looks at its last bytes for truncation):
  size, channel count, bits per sample. It never decodes pixels.
* :func:`load_image` decodes pixels as stored: a C x H x W tensor of ``uint8``, ``uint16``,
  ``int32`` or ``float32``. 16-bit PNG and TIFF stay 16-bit; multi-page TIFF and ``.npy`` stacks
  give one channel per page or plane.
* :func:`to_unit` maps stored values to float32 in [-1, 1] under a :class:`Normalization` rule.

:func:`read_image` is ``to_unit(load_image(...))``; :func:`write_image` is its inverse, with 8 or
16 bits per sample. torch is imported inside the functions, so importing this module is cheap.

Formats: PNG (1, 2, 4, 8, 16 bits; grey, grey+alpha, RGB, RGBA, palette), JPEG, TIFF (one page
or a multi-page stack; 8/16-bit, int32, float32 pages), BMP, WebP, PPM/PGM through Pillow, and
NumPy ``.npy`` arrays (H x W, H x W x C, or C x H x W: an array is taken as channels-first when
its first axis is shorter than its last).

Limits: an image whose header declares more than ``P2P_MAX_IMAGE_PIXELS`` pixels (an environment
variable, read at each check; default 100 million, so 10000 x 10000 passes and 12000 x 12000 does
not) is refused with a :class:`P2PError` before any pixel is decoded, by :func:`probe_image` and
:func:`load_image` alike. An image of more than 4 channels (a TIFF or ``.npy`` stack) counts
``channels / 4`` pixels per pixel. Pillow's own limit, ``PIL.Image.MAX_IMAGE_PIXELS``, is kept equal
to it, so Pillow never decodes what p2p would refuse.

Orientation: an EXIF orientation tag (JPEG, TIFF, WebP; PNG when its eXIf chunk comes before the
image data) is applied on reading, as ``PIL.ImageOps.exif_transpose`` does, whichever decoder reads
the file; :func:`probe_image` reports the width and height of the upright image.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from p2pcore.errors import P2PError

# torchvision 0.29 warns on every decode that its image codecs are deprecated; they are still the
# fastest way to decode JPEG and 16-bit PNG here, and load_image falls back to Pillow without them.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["IMAGE_SUFFIXES", "WRITE_SUFFIXES", "ImageInfo", "Normalization", "probe_image", "load_image",
           "match_channels", "to_unit", "read_image", "write_image", "write_suffixes", "full_scale", "max_image_pixels",
           "MAX_PIXELS_ENV", "DEFAULT_MAX_PIXELS"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                            ".npy"})
WRITE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy", ".bmp", ".webp", ".ppm", ".pgm")
_SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff", ".npy")


def write_suffixes(bits: int = 8) -> tuple[str, ...]:
    """The formats :func:`write_image` writes with `bits` per sample, the usual ones first: adapters declare
    them as their ``output_suffixes``, so ``p2p translate`` refuses a 16-bit JPEG before any network runs."""
    return _SIXTEEN_BIT_SUFFIXES if bits == 16 else WRITE_SUFFIXES

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels (palette expands to RGB)
_CORRUPT_HINT = "the file is corrupt, truncated or not an image; replace or remove it"
_TAIL_BYTES = 4096
_PNG_CHUNKS_PROBED = 256  # ancillary chunks looked at before the image data (for tRNS and eXIf)
_EXIF_BYTES = 1 << 20  # larger eXIf chunks are not read by the probe
_ORIENTATION = 0x0112  # the EXIF orientation tag

MAX_PIXELS_ENV = "P2P_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 100_000_000


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


@dataclass(frozen=True)
class Normalization:
    """How stored values map to [-1, 1].

    * ``full_range``: the full range of the sample type (0..255, 0..65535; int32 samples use
      0..65535; float samples are taken to lie in [0, 1]).
    * ``fixed``: ``min`` maps to -1 and ``max`` to 1, in stored units; values outside are clipped.
    * ``percentile``: per image, the ``low`` and ``high`` percentiles (over all its channels)
      map to -1 and 1; values outside are clipped. A constant image maps to 0.
    """

    mode: Literal["full_range", "fixed", "percentile"] = "full_range"
    min: float | None = None
    max: float | None = None
    low: float = 1.0
    high: float = 99.0

    def __post_init__(self) -> None:
        if self.mode == "fixed" and (self.min is None or self.max is None or self.max <= self.min):
            raise ValueError("fixed normalisation needs min < max")
        if self.mode == "percentile" and not 0 <= self.low < self.high <= 100:
            raise ValueError("percentile normalisation needs 0 <= low < high <= 100")


FULL_RANGE = Normalization()


# -- limits ----------------------------------------------------------------------------------------

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


# -- orientation -----------------------------------------------------------------------------------

def _exif_orientation(data: bytes) -> int:
    exif = Image.Exif()
    try:
        exif.load(data)
        value = exif.get(_ORIENTATION, 1)
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, OSError, EOFError, struct.error):
        return 1  # damaged EXIF data leaves the pixels readable, as stored
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


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


# -- opening with Pillow ---------------------------------------------------------------------------

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


# -- probing ------------------------------------------------------------------------------------------

def _unreadable(path: str, exc: BaseException | str) -> P2PError:
    reason = str(exc)
    if "cannot identify image file" in reason:  # Pillow's words, with a file object's repr in them
        reason = "the file is empty" if Path(path).stat().st_size == 0 else "not a recognised image format"
    return P2PError(f"cannot read image: {reason}", file=path, hint=_CORRUPT_HINT)


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


def _tiff_bits(image: Image.Image) -> tuple[int, ...]:
    value = getattr(image, "tag_v2", {}).get(258, (8,))
    return tuple(value) if isinstance(value, tuple | list) else (value,)


# -- decoding -----------------------------------------------------------------------------------------

def _pil_array(image: Image.Image) -> np.ndarray:
    """One Pillow frame as an H x W x C array of its stored type."""
    mode = image.mode
    if mode.startswith("I;16"):
        array = np.asarray(image).astype(np.uint16)
    elif mode in ("I", "F", "L", "LA", "RGB", "RGBA"):
        array = np.asarray(image)
        if mode == "I":
            array = array.astype(np.int32)
    elif mode == "1":
        array = np.asarray(image.convert("L"))
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        array = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    elif mode in ("RGBa", "La"):
        array = np.asarray(image.convert("RGBA" if mode == "RGBa" else "LA"))
    else:
        array = np.asarray(image.convert("RGB"))
    return array[..., None] if array.ndim == 2 else array


def _load_pil(image: Image.Image, path: str) -> np.ndarray:
    """The pixels of an opened image (its size already checked) as an H x W x C array, as stored."""
    if image.format == "TIFF" and image.mode == "RGB" and 16 in _tiff_bits(image):
        return _load_tifffile(path)
    if image.format == "TIFF" and getattr(image, "n_frames", 1) > 1:
        sizes = set()
        for index in range(image.n_frames):  # headers only: no page is decoded before all are known
            image.seek(index)
            sizes.add(image.size)
        if len(sizes) > 1:
            raise P2PError("the pages of this TIFF stack differ in size", file=path,
                           hint="every page of a multi-page TIFF is one channel of the same size")
        image.seek(0)
        pages = [_pil_array(page) for page in ImageSequence.Iterator(image)]
        dtypes = {p.dtype for p in pages}
        common = pages[0].dtype if len(dtypes) == 1 else np.result_type(*dtypes)
        return np.concatenate([p.astype(common, copy=False) for p in pages], axis=-1)
    image.load()
    return _pil_array(image)


def _load_tifffile(path: str) -> np.ndarray:
    try:
        import tifffile
    except ImportError:
        raise P2PError("this TIFF stores several 16-bit samples per pixel, which Pillow cannot read "
                       "without losing precision", file=path,
                       hint="install tifffile, or save it as a 16-bit PNG or a multi-page TIFF "
                            "(one page per channel)") from None
    array = tifffile.imread(path)
    return array[..., None] if array.ndim == 2 else array


def _load_npy(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        info = _probe_npy(f, path)
    _check_size(path, info.width, info.height, info.channels)
    array = np.load(path, allow_pickle=False)
    h, w, c = _npy_layout(array.shape, path)
    if array.ndim == 2:
        array = array[..., None]
    elif array.shape[0] < array.shape[2]:
        array = np.moveaxis(array, 0, -1)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    return array


def _array_to_tensor(array: np.ndarray, path: str) -> torch.Tensor:
    import torch

    bits, sample = _dtype_depth(array.dtype, path)
    if sample == "int":
        array = array.astype(np.int32, copy=False)
    elif sample == "float":
        array = array.astype(np.float32, copy=False)
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _decode_with_torchvision(path: str, image: Image.Image, channels: int | None) -> torch.Tensor | None:
    """JPEG through torchvision (faster than Pillow), and 16-bit colour PNG, which Pillow reads as 8 bits.

    `image` is the file opened by Pillow (header only, size checked). torchvision 0.29's decode_png
    crashes the process (a segmentation fault, not an exception) on damaged image data, so a PNG
    reaches it only after Pillow has decoded it cleanly; every other PNG is Pillow's alone. None for
    files Pillow handles, or when this torchvision no longer decodes images. EXIF orientation is left
    to the caller.
    """
    if image.format not in ("JPEG", "PNG"):
        return None
    try:
        from torchvision.io import ImageReadMode, decode_jpeg, decode_png, read_file
    except ImportError:  # pragma: no cover - image decoding is deprecated in torchvision 0.29
        return None
    data = read_file(path)
    head = bytes(data[:26].tolist())
    if head.startswith(b"\xff\xd8"):
        mode = {1: ImageReadMode.GRAY, 3: ImageReadMode.RGB}.get(channels or 0, ImageReadMode.UNCHANGED)
        decoded = decode_jpeg(data, mode=mode)
        if decoded.shape[0] not in (1, 3):  # CMYK
            decoded = decode_jpeg(data, mode=ImageReadMode.RGB)
        return decoded
    png = head.startswith(_PNG_SIGNATURE) and len(head) == 26
    if png and head[24] == 16 and head[25] in (2, 4, 6):  # 16 bits per sample, more than one sample
        image.load()  # raises on damaged data, where decode_png would crash
        return decode_png(data, mode=ImageReadMode.UNCHANGED)
    return None


def _decode(image: Image.Image, path: str, channels: int | None) -> torch.Tensor:
    """Check an opened image's declared size, decode it and turn it upright."""
    pages = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
    _check_size(path, image.width, image.height, len(image.getbands()) * pages)
    orientation = _orientation(image)
    tensor = _decode_with_torchvision(path, image, channels)
    if tensor is None and image.format == "TIFF" and orientation != 1:
        # Pillow 13 turns TIFF pages upright as it decodes them (and drops the tag), but scrambles the
        # ones it maps from a file; from memory it turns them correctly. Older versions leave the tag.
        from PIL import TiffImagePlugin

        with open(path, "rb") as f, TiffImagePlugin.TiffImageFile(io.BytesIO(f.read())) as in_memory:
            tensor = _array_to_tensor(_load_pil(in_memory, path), path)
            if _ORIENTATION not in in_memory.tag_v2:
                orientation = 1
    elif tensor is None:
        tensor = _array_to_tensor(_load_pil(image, path), path)
    return _upright(tensor, orientation)


def load_image(path: str | Path, channels: int | None = None) -> torch.Tensor:
    """Decode a file as stored: C x H x W of uint8, uint16, int32 or float32, turned upright as its
    EXIF orientation says.

    With `channels`, the channel count is matched as :func:`match_channels` describes.
    Raises :class:`P2PError` naming the file when it is missing, corrupt or truncated, or when its
    header declares more pixels than :func:`max_image_pixels` allows (checked before decoding).
    """
    path = str(path)
    try:
        if Path(path).suffix.lower() == ".npy":
            tensor = _array_to_tensor(_load_npy(path), path)
        else:
            with _pil_open(path) as image:
                tensor = _decode(image, path, channels)
    except FileNotFoundError:
        raise P2PError("image file not found", file=path, hint="check the path and the data root") from None
    except P2PError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _pillow_refused(path, exc) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, RuntimeError, EOFError,
            struct.error) as exc:
        if not Path(path).is_file():
            raise P2PError("image file not found", file=path,
                           hint="check the path and the data root") from None
        message = str(exc).rsplit(", ", 1)[-1] if "csrc" in str(exc) else str(exc)
        raise _unreadable(path, message) from None
    return tensor if channels is None else match_channels(tensor, channels, path)


_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as Pillow's "L" conversion


def match_channels(image: torch.Tensor, channels: int, path: str = "") -> torch.Tensor:
    """Give a C x H x W image `channels` channels.

    Equal counts pass through; alpha is dropped (2 -> 1, 4 -> 3); grey is repeated to 3
    channels; RGB becomes luma for 1 channel (rounded back to the stored integer type).
    Anything else raises :class:`P2PError`.
    """
    import torch

    have = image.shape[0]
    if have == channels:
        return image
    if have in (2, 4) and channels in (have - 1, 1, 3):
        image, have = image[: have - 1], have - 1
        if have == channels:
            return image
    if have == 1 and channels == 3:
        return image.expand(3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor(_LUMA, dtype=torch.float32).view(3, 1, 1)
        luma = (image.to(torch.float32) * weights).sum(0, keepdim=True)
        if image.dtype.is_floating_point:
            return luma
        return luma.round_().clamp_(0, full_scale(image.dtype)).to(image.dtype)
    raise P2PError(f"image has {have} channels, expected {channels}", file=path or None,
                   hint="set the side's `channels` in the recipe to match the files")


def full_scale(dtype: Any) -> float:
    """The stored value that stands for full scale under ``full_range`` normalisation."""
    import torch

    if dtype == torch.uint8:
        return 255.0
    if dtype in (torch.uint16, torch.int32, torch.int16):
        return 65535.0
    return 1.0


def to_unit(image: torch.Tensor, normalization: Normalization | None = None) -> torch.Tensor:
    """Map stored values to float32 in [-1, 1] (see :class:`Normalization`)."""
    import torch

    rule = normalization or FULL_RANGE
    x = image.to(torch.float32)
    if rule.mode == "full_range":
        scale = full_scale(image.dtype)
        x = x.mul_(2.0 / scale).sub_(1.0)
        return x.clamp_(-1.0, 1.0) if image.dtype != torch.uint8 and image.dtype != torch.uint16 else x
    if rule.mode == "fixed":
        lo, hi = float(rule.min), float(rule.max)  # type: ignore[arg-type]
    else:
        flat = x.reshape(-1)
        if flat.numel() > 1 << 22:  # quantile is exact enough on a regular subsample
            flat = flat[:: flat.numel() // (1 << 22) + 1]
        q = torch.quantile(flat, torch.tensor([rule.low / 100, rule.high / 100]))
        lo, hi = float(q[0]), float(q[1])
        if hi <= lo:
            return torch.zeros_like(x)
    return x.sub_(lo).mul_(2.0 / (hi - lo)).sub_(1.0).clamp_(-1.0, 1.0)


def read_image(path: str | Path, channels: int, *, normalize: Normalization | None = None) -> torch.Tensor:
    """Read an image as a float32 tensor C x H x W in [-1, 1] with `channels` channels."""
    return to_unit(load_image(path, channels), normalize)


# -- encoding -----------------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _encode_png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG from an H x W x C uint16 array (C = 1, 2, 3 or 4), rows "Up"-filtered."""
    height, width, channels = array.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(array.astype(">u2")).view(np.uint8).reshape(height, width * channels * 2)
    filtered = rows.copy()
    filtered[1:] -= rows[:-1]  # filter type 2: difference with the row above, modulo 256
    raw = np.concatenate([np.full((height, 1), 2, np.uint8), filtered], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    return (_PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw, 6))
            + _png_chunk(b"IEND", b""))


def _quantise(image: torch.Tensor, bits: int) -> np.ndarray:
    import torch

    scale = 65535.0 if bits == 16 else 255.0
    array = ((image.detach().to("cpu", dtype=torch.float32).clamp(-1, 1) + 1) * (scale / 2)).round_()
    return array.permute(1, 2, 0).numpy().astype(np.uint16 if bits == 16 else np.uint8)


def write_image(image: torch.Tensor, path: str | Path, *, bits: int = 8) -> None:
    """Write a C x H x W tensor in [-1, 1] with 8 or 16 bits per sample, the format by extension.

    1 channel stays grey, 2 is grey+alpha, 3 RGB, 4 RGBA. PNG and TIFF take 8 or 16 bits (16-bit
    TIFFs with several channels are written as one page per channel); ``.npy`` writes an
    H x W x C array of uint8/uint16 and takes any channel count, as does a multi-page TIFF;
    JPEG, BMP, WebP and PPM/PGM are 8-bit only.
    """
    path = Path(path)
    where = str(path)
    if bits not in (8, 16):
        raise P2PError(f"cannot write {bits}-bit images", file=where, hint="bits is 8 or 16")
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] < 1:
        raise P2PError(f"cannot write an image of shape {tuple(image.shape)}", file=where,
                       hint="images are C x H x W tensors")
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise P2PError(f"unknown image format {suffix or '(no extension)'!r}", file=where,
                       hint=f"use one of {', '.join(WRITE_SUFFIXES)}")
    channels = image.shape[0]
    array = _quantise(image, bits)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, array[..., 0] if channels == 1 else array)
        return
    if suffix in (".tif", ".tiff") and (channels not in (1, 3, 4) or (bits == 16 and channels > 1)):
        pages = [Image.fromarray(array[..., i]) for i in range(channels)]
        pages[0].save(path, format="TIFF", save_all=True, append_images=pages[1:])
        return
    if channels > 4 or (suffix in (".jpg", ".jpeg", ".bmp", ".ppm", ".pgm") and channels == 2):
        raise P2PError(f"{suffix} cannot hold {channels} channels", file=where,
                       hint="write .npy or .tif to keep more than 4 channels")
    if suffix == ".pgm" and channels != 1:
        raise P2PError(f".pgm holds grey images, not {channels} channels", file=where,
                       hint="write .ppm or .png for colour")
    if bits == 16:
        if suffix == ".png":
            path.write_bytes(_encode_png16(array))
            return
        if suffix not in write_suffixes(16):
            raise P2PError(f"{suffix} cannot hold 16-bit samples", file=where,
                           hint="write .png, .tif or .npy for 16 bits")
        Image.fromarray(array[..., 0]).save(path, format="TIFF")
        return
    pil = Image.fromarray(array[..., 0] if channels == 1 else array)
    if suffix in (".jpg", ".jpeg", ".bmp", ".ppm", ".pgm") and pil.mode == "RGBA":
        pil = pil.convert("RGB")
    if suffix in (".jpg", ".jpeg"):
        pil.save(path, quality=95)
    else:
        pil.save(path)
