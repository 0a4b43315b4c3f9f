"""Writing a C x H x W tensor in [-1, 1] with 8 or 16 bits per sample, the format by extension
(:func:`write_image`); 16-bit PNGs are encoded here, since Pillow writes colour PNGs with 8 bits only."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from p2pcore.errors import P2PError
from p2pcore.formats import WRITE_SUFFIXES, write_suffixes
from p2pcore.imageio.headers import _PNG_SIGNATURE

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
