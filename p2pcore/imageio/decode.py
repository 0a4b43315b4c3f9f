"""Decoding pixels as stored (:func:`load_image`) and as float32 in [-1, 1] (:func:`read_image`).

JPEG and 16-bit colour PNG go through torchvision when it still decodes images; everything else, and
multi-page TIFF stacks (one channel per page), through Pillow; 16-bit multi-sample TIFF through tifffile;
``.npy`` arrays through NumPy. The declared size is checked before any pixel is decoded.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from p2pcore.errors import P2PError
from p2pcore.imageio.headers import _ORIENTATION, _PNG_SIGNATURE, _dtype_depth, _npy_layout, _probe_npy, _tiff_bits
from p2pcore.imageio.limits import _check_size, _pillow_refused, _unreadable
from p2pcore.imageio.normalization import Normalization, match_channels, to_unit
from p2pcore.imageio.pillow import _orientation, _pil_open, _upright

# torchvision 0.29 warns on every decode that its image codecs are deprecated; they are still the
# fastest way to decode JPEG and 16-bit PNG here, and load_image falls back to Pillow without them.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
    # Only the pages the file holds are read, one image each: series that metadata (OME-XML, ImageJ) declare
    # would have tifffile allocate every plane they claim, however few the file stores.
    with tifffile.TiffFile(path, is_ome=False, is_imagej=False) as tiff:
        if len(tiff.pages) > 1:
            raise P2PError(f"this TIFF stores {len(tiff.pages)} pages of several 16-bit samples each", file=path,
                           hint="save one image per file, or one channel per page of a multi-page TIFF")
        page = tiff.pages[0]
        height, width = page.imagelength, page.imagewidth
        _check_size(path, width, height, page.samplesperpixel)
        array = page.asarray()
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


def read_image(path: str | Path, channels: int, *, normalize: Normalization | None = None) -> torch.Tensor:
    """Read an image as a float32 tensor C x H x W in [-1, 1] with `channels` channels."""
    return to_unit(load_image(path, channels), normalize)
