"""The image readers and writers the adapters use, gathered in one place.

They are p2p's precise file I/O (16-bit PNG/TIFF, TIFF and .npy stacks, header probes, normalisation
rules, 8/16-bit writers), offered by :mod:`p2pcore.api`.
"""

from __future__ import annotations

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
)

__all__ = ["IMAGE_SUFFIXES", "ImageInfo", "Normalization", "load_image", "match_channels", "probe_image",
           "read_image", "to_unit", "write_image"]
