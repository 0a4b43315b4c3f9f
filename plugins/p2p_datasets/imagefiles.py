"""The image readers and writers the adapters use, gathered in one place, and the formats they declare.

They are p2p's precise file I/O (16-bit PNG/TIFF, TIFF and .npy stacks, header probes, normalisation
rules, 8/16-bit writers), offered by :mod:`p2pcore.api`.
"""

from __future__ import annotations

from typing import Any

from p2pcore.api import (
    IMAGE_SUFFIXES,
    ImageInfo,
    Normalization,
    load_image,
    match_channels,
    probe_image,
    read_image,
    to_unit,
    write_image,
    write_suffixes,
)

__all__ = ["IMAGE_SUFFIXES", "ImageFormats", "ImageInfo", "Normalization", "load_image", "match_channels",
           "probe_image", "read_image", "to_unit", "write_image", "write_suffixes"]


class ImageFormats:
    """The files an adapter built on this I/O reads and writes for ``p2p translate`` (the adapter contract's
    ``input_suffixes``/``output_suffixes``): every image format in, and out the formats that hold the bits
    it writes, so a 16-bit JPEG is refused before any network runs."""

    params: Any

    def input_suffixes(self, key: str) -> tuple[str, ...]:
        return tuple(sorted(IMAGE_SUFFIXES))

    def output_suffixes(self, key: str) -> tuple[str, ...]:
        return write_suffixes(self.output_bits(key))

    def output_bits(self, key: str) -> int:
        """Bits per sample `write_output` writes for an image key: the recipe's `output_bits` where it has one."""
        return getattr(self.params, "output_bits", 8)
