"""Reading and writing images as float tensors in [-1, 1] without losing precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from p2pcore.errors import P2PError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def _to_array(image: Image.Image) -> tuple[np.ndarray, float]:
    """Pixel array H x W x C and the value that stands for full scale."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image, dtype=np.uint16)[..., None], 65535.0
    if image.mode == "I":
        array = np.asarray(image, dtype=np.int32)
        return array[..., None], 65535.0 if array.max(initial=0) > 255 else 255.0
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)[..., None], 1.0
    if image.mode not in ("L", "RGB", "RGBA", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    array = np.asarray(image)
    return (array[..., None] if array.ndim == 2 else array), 255.0


def _match_channels(array: np.ndarray, channels: int, path: str) -> np.ndarray:
    have = array.shape[-1]
    if have == channels:
        return array
    if have in (2, 4):  # drop alpha
        array, have = array[..., : have - 1], have - 1
        if have == channels:
            return array
    if have == 1 and channels == 3:
        return np.repeat(array, 3, axis=-1)
    if have == 3 and channels == 1:  # ITU-R 601-2 luma, as PIL's "L" conversion
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return (array.astype(np.float32) @ weights)[..., None]
    raise P2PError(f"image has {have} channels, expected {channels}", file=path,
                   hint="set the side's `channels` in the recipe to match the files")


def read_image(path: str | Path, channels: int) -> torch.Tensor:
    """Read an image as a float32 tensor C x H x W in [-1, 1]."""
    path = str(path)
    try:
        with Image.open(path) as image:
            image.load()
            array, full_scale = _to_array(image)
    except FileNotFoundError:
        raise P2PError("image file not found", file=path, hint="check the path and the data root") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise P2PError(f"cannot read image: {exc}", file=path,
                       hint="the file is corrupt, truncated or not an image; replace or remove it") from None
    array = _match_channels(array, channels, path).astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    return tensor.mul_(2.0 / full_scale).sub_(1.0)


def write_image(image: torch.Tensor, path: str | Path, *, bits: int = 8) -> None:
    """Write a C x H x W tensor in [-1, 1]; 1 channel stays grayscale, `bits` 8 or 16 (PNG/TIFF)."""
    path = Path(path)
    if image.dim() != 3 or image.shape[0] not in (1, 3, 4):
        raise P2PError(f"cannot write an image of shape {tuple(image.shape)}", file=str(path),
                       hint="images are written with 1, 3 or 4 channels")
    scale = 65535.0 if bits == 16 else 255.0
    array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * (scale / 2)).round()
    array = array.permute(1, 2, 0).numpy().astype(np.uint16 if bits == 16 else np.uint8)
    if array.shape[-1] == 1:
        pil = Image.fromarray(array[..., 0], mode="I;16" if bits == 16 else "L")
    else:
        if bits == 16:
            raise P2PError("16-bit output is supported for 1-channel images only", file=str(path),
                           hint="write 8 bits for colour images")
        pil = Image.fromarray(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg") and pil.mode == "RGBA":
        pil = pil.convert("RGB")
    pil.save(path)
