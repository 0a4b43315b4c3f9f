"""Built-in dataset adapters.

Every adapter is built without touching the disk (so ``p2p translate`` can rebuild one from a
checkpoint on a machine without the data) and offers:

* ``a_channels`` / ``b_channels``: input and target channel counts;
* ``dataset(split, train=...)``: a torch Dataset of ``{"a", "b", "name", "skipped"}`` items, images
  float32 C x H x W in [-1, 1] (``single`` has no ``"b"``); ``train=True`` adds random jitter;
* ``check(split, deep=...)``: a :class:`DataReport` of the split (headers only unless `deep`);
* ``read_input(path)`` / ``write_output(image, path)`` for ``p2p translate``.

This module imports no torch: builders import the adapter modules when called.
"""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, hookimpl

from .params import PairedFoldersParams, SyntheticThermalParams
from .report import DataReport

__all__ = ["DataReport", "p2p_register_datasets"]


def build_paired_folders(params: PairedFoldersParams, ctx: BuildContext) -> Any:
    """Two folders of pixel-aligned images paired by file name (thermal/rgb, any channels, 8/16-bit)."""
    from .paired import PairedFolders

    return PairedFolders(params)


def build_synthetic_thermal(params: SyntheticThermalParams, ctx: BuildContext) -> Any:
    """Rendered outdoor scenes as thermal (1 channel) -> colour (3 channels) pairs; no files needed."""
    from .synthetic import SyntheticThermal

    return SyntheticThermal(params)


@hookimpl
def p2p_register_datasets(register: Any) -> None:
    register("paired_folders", build_paired_folders, params=PairedFoldersParams, aliases=("paired",))
    register("synthetic_thermal", build_synthetic_thermal, params=SyntheticThermalParams, aliases=("synthetic",))
