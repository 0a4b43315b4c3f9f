"""Built-in dataset adapters.

Every adapter is built without touching the disk (so ``p2p translate`` can rebuild one from a
checkpoint on a machine without the data) and offers:

* ``a_channels`` / ``b_channels``: input and target channel counts;
* ``dataset(split, train=...)``: a torch Dataset of ``{"a", "b", "name", "skipped"}`` items, images
  float32 C x H x W in [-1, 1] (``single`` has no ``"b"``); ``train=True`` adds random jitter;
* ``check(split, deep=...)``: a :class:`DataReport` of the split (headers only unless `deep`);
* ``read_input(path)`` / ``write_output(image, path)`` for ``p2p translate``.

The label-map adapters (``cityscapes_hd``, ``synthetic_labels``) give ``{"label", "b", ...}`` items instead:
``label`` holds integer label ids (and instance ids as a second channel), declared in their ``channels``,
and their ``display`` shows label maps in a colour palette.

This module imports no torch: builders import the adapter modules when called.
"""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, DataReport, hookimpl

from .hd_folders import HDFoldersParams, build_hd_folders
from .params import (
    AlignedParams,
    CityscapesLabelsParams,
    CityscapesReleaseParams,
    ColorizationParams,
    KaistParams,
    PairedFoldersParams,
    SingleParams,
    SyntheticLabelsParams,
    SyntheticThermalParams,
    UnalignedParams,
)

P2P_API = ">=1.2,<2"  # the plugin API versions this plugin supports (the Cityscapes label set came with 1.2)

__all__ = ["DataReport", "p2p_register_datasets"]


def build_paired_folders(params: PairedFoldersParams, ctx: BuildContext) -> Any:
    """Two folders of pixel-aligned images paired by file name (thermal/rgb, any channels, 8/16-bit)."""
    from .paired import PairedFolders

    return PairedFolders(params)


def build_synthetic_thermal(params: SyntheticThermalParams, ctx: BuildContext) -> Any:
    """Rendered outdoor scenes as thermal (1 channel) -> colour (3 channels) pairs; no files needed."""
    from .synthetic import SyntheticThermal

    return SyntheticThermal(params)


def build_synthetic_labels(params: SyntheticLabelsParams, ctx: BuildContext) -> Any:
    """Rendered street scenes as Cityscapes-style label and instance maps -> photos; no files needed."""
    from .synthetic_labels import SyntheticLabels

    return SyntheticLabels(params)


def build_aligned(params: AlignedParams, ctx: BuildContext) -> Any:
    """pix2pix "AB" images: A and B side by side in one file (facades, cityscapes, maps, edges2*)."""
    from .aligned import Aligned

    return Aligned(params)


def build_unaligned(params: UnalignedParams, ctx: BuildContext) -> Any:
    """Unpaired domains trainA/ and trainB/ (CycleGAN): each A gets a random B."""
    from .unaligned import Unaligned

    return Unaligned(params)


def build_single(params: SingleParams, ctx: BuildContext) -> Any:
    """One folder of input images, for inference; items have no target."""
    from .single import Single

    return Single(params)


def build_kaist(params: KaistParams, ctx: BuildContext) -> Any:
    """KAIST multispectral pedestrian videos: lwir -> visible, sets 00-05 train, 06-11 test."""
    from .kaist import Kaist

    return Kaist(params)


def build_colorization(params: ColorizationParams, ctx: BuildContext) -> Any:
    """Colour photos as Lab: L (1 channel) -> ab (2 channels); outputs are written back as RGB."""
    from .colorization import Colorization

    return Colorization(params)


def build_cityscapes_labels(params: CityscapesLabelsParams, ctx: BuildContext) -> Any:
    """Cityscapes photo -> label map: colour-coded labels decoded to the 19 train IDs (255 = ignore)."""
    from .cityscapes import CityscapesLabels

    return CityscapesLabels(params)


def build_cityscapes_hd(params: CityscapesReleaseParams, ctx: BuildContext) -> Any:
    """Cityscapes as released (gtFine labelIds and instanceIds, leftImg8bit photos): label maps -> photo."""
    from .cityscapes_release import CityscapesRelease

    return CityscapesRelease(params)


@hookimpl
def p2p_register_datasets(register: Any) -> None:
    register("paired_folders", build_paired_folders, params=PairedFoldersParams, aliases=("paired",))
    register("synthetic_thermal", build_synthetic_thermal, params=SyntheticThermalParams, aliases=("synthetic",))
    register("synthetic_labels", build_synthetic_labels, params=SyntheticLabelsParams)
    register("aligned", build_aligned, params=AlignedParams)
    register("unaligned", build_unaligned, params=UnalignedParams, aliases=("unpaired",))
    register("single", build_single, params=SingleParams)
    register("kaist", build_kaist, params=KaistParams)
    register("colorization", build_colorization, params=ColorizationParams)
    register("cityscapes_labels", build_cityscapes_labels, params=CityscapesLabelsParams)
    register("cityscapes_hd", build_cityscapes_hd, params=CityscapesReleaseParams, aliases=("cityscapes_release",))
    register("pix2pixhd_folders", build_hd_folders, params=HDFoldersParams)
