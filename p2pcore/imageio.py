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
"""

from __future__ import annotations

import struct
import warnings
import zlib
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

__all__ = ["IMAGE_SUFFIXES", "ImageInfo", "Normalization", "probe_image", "load_image", "match_channels",
           "to_unit", "read_image", "write_image", "full_scale"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                            ".npy"})
WRITE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy", ".bmp", ".webp", ".ppm", ".pgm")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels (palette expands to RGB)
_CORRUPT_HINT = "the file is corrupt, truncated or not an image; replace or remove it"
_TAIL_BYTES = 4096


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
    if colour == 3:  # a palette with a transparency chunk expands to RGBA
        bits = 8
        f.seek(33)
        while True:
            chunk = f.read(8)
            if len(chunk) < 8 or chunk[4:8] in (b"IDAT", b"IEND"):
                break
            if chunk[4:8] == b"tRNS":
                channels = 4
                break
            f.seek(struct.unpack(">I", chunk[:4])[0] + 4, 1)
    elif bits < 8:
        bits = 8  # 1, 2 and 4-bit grey expand to 8 bits
    return ImageInfo(width, height, channels, bits, "uint", "PNG")


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
    """Read a file's header; raise :class:`P2PError` naming the file if it is missing or damaged.

    PNG and JPEG files whose last bytes lack the end marker are decoded in full to confirm
    truncation, so a file that passes is very likely whole. No other pixels are decoded.
    """
    path = str(path)
    try:
        with open(path, "rb") as f:
            if path.lower().endswith(".npy"):
                return _probe_npy(f, path)
            head = f.read(33)
            if head.startswith(_PNG_SIGNATURE):
                info = _probe_png(f, head, path)
            else:
                f.seek(0)
                with Image.open(f) as image:
                    channels, bits, sample = _mode_info(image.mode)
                    pages = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
                    if image.format == "TIFF" and image.mode == "RGB" and 16 in _tiff_bits(image):
                        bits = 16
                    info = ImageInfo(image.width, image.height, channels * pages, bits, sample,
                                     image.format or "", pages)
    except FileNotFoundError:
        raise P2PError("image file not found", file=path, hint="check the path and the data root") from None
    except P2PError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise _unreadable(path, exc) from None
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


def _load_pil(path: str) -> np.ndarray:
    with Image.open(path) as image:
        if image.format == "TIFF" and image.mode == "RGB" and 16 in _tiff_bits(image):
            return _load_tifffile(path)
        if image.format == "TIFF" and getattr(image, "n_frames", 1) > 1:
            pages = [_pil_array(page) for page in ImageSequence.Iterator(image)]
            if len({p.shape[:2] for p in pages}) > 1:
                raise P2PError("the pages of this TIFF stack differ in size", file=path,
                               hint="every page of a multi-page TIFF is one channel of the same size")
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


def _decode_with_torchvision(path: str, channels: int | None) -> torch.Tensor | None:
    """JPEG through torchvision (faster than Pillow), and 16-bit colour PNG, which Pillow reads as 8 bits.

    torchvision 0.29's decode_png crashes the process (a segmentation fault, not an exception) on
    damaged image data, so a PNG reaches it only after Pillow has decoded it cleanly; every other PNG
    is Pillow's alone. None for files Pillow handles, or when this torchvision no longer decodes images.
    """
    try:
        from torchvision.io import ImageReadMode, decode_jpeg, decode_png, read_file
    except ImportError:  # pragma: no cover - image decoding is deprecated in torchvision 0.29
        return None
    data = read_file(path)
    head = bytes(data[:26].tolist())
    if head.startswith(b"\xff\xd8"):
        mode = {1: ImageReadMode.GRAY, 3: ImageReadMode.RGB}.get(channels or 0, ImageReadMode.UNCHANGED)
        image = decode_jpeg(data, mode=mode)
        if image.shape[0] not in (1, 3):  # CMYK
            image = decode_jpeg(data, mode=ImageReadMode.RGB)
        return image
    png = head.startswith(_PNG_SIGNATURE) and len(head) == 26
    if png and head[24] == 16 and head[25] in (2, 4, 6):  # 16 bits per sample, more than one sample
        with Image.open(path) as image:
            image.load()  # raises on damaged data, where decode_png would crash
        return decode_png(data, mode=ImageReadMode.UNCHANGED)
    return None


def load_image(path: str | Path, channels: int | None = None) -> torch.Tensor:
    """Decode a file as stored: C x H x W of uint8, uint16, int32 or float32.

    With `channels`, the channel count is matched as :func:`match_channels` describes.
    Raises :class:`P2PError` naming the file when it is missing, corrupt or truncated.
    """
    path = str(path)
    suffix = Path(path).suffix.lower()
    try:
        tensor = None
        if suffix not in (".npy", ".tif", ".tiff"):
            tensor = _decode_with_torchvision(path, channels)
        if tensor is None:
            array = _load_npy(path) if suffix == ".npy" else _load_pil(path)
            tensor = _array_to_tensor(array, path)
    except FileNotFoundError:
        raise P2PError("image file not found", file=path, hint="check the path and the data root") from None
    except P2PError:
        raise
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
    if bits == 16:
        if suffix == ".png":
            path.write_bytes(_encode_png16(array))
            return
        if suffix not in (".tif", ".tiff"):
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
