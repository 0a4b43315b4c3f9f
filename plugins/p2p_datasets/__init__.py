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

from collections.abc import Callable
from importlib import import_module
from typing import Any

from p2pcore.api import BuildContext, DataReport, DatasetParams, hookimpl

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

P2P_API = ">=1.7,<2"  # the plugin API versions this plugin supports (the core's file writers came with 1.7)

__all__ = ["DataReport", "p2p_register_datasets"]


ADAPTERS: tuple[tuple[str, type[DatasetParams], str, tuple[str, ...], str], ...] = (
    # (name, parameters, "module.Class" of the adapter in this package, aliases, summary)
    ("paired_folders", PairedFoldersParams, "paired.PairedFolders", ("paired",),
     "Two folders of pixel-aligned images paired by file name (thermal/rgb, any channels, 8/16-bit)."),
    ("synthetic_thermal", SyntheticThermalParams, "synthetic.SyntheticThermal", ("synthetic",),
     "Rendered outdoor scenes as thermal (1 channel) -> colour (3 channels) pairs; no files needed."),
    ("synthetic_labels", SyntheticLabelsParams, "synthetic_labels.SyntheticLabels", (),
     "Rendered street scenes as Cityscapes-style label and instance maps -> photos; no files needed."),
    ("aligned", AlignedParams, "aligned.Aligned", (),
     'pix2pix "AB" images: A and B side by side in one file (facades, cityscapes, maps, edges2*).'),
    ("unaligned", UnalignedParams, "unaligned.Unaligned", ("unpaired",),
     "Unpaired domains trainA/ and trainB/ (CycleGAN): each A gets a random B."),
    ("single", SingleParams, "single.Single", (),
     "One folder of input images, for inference; items have no target."),
    ("kaist", KaistParams, "kaist.Kaist", (),
     "KAIST multispectral pedestrian videos: lwir -> visible, sets 00-05 train, 06-11 test."),
    ("colorization", ColorizationParams, "colorization.Colorization", (),
     "Colour photos as Lab: L (1 channel) -> ab (2 channels); outputs are written back as RGB."),
    ("cityscapes_labels", CityscapesLabelsParams, "cityscapes.CityscapesLabels", (),
     "Cityscapes photo -> label map: colour-coded labels decoded to the 19 train IDs (255 = ignore)."),
    ("cityscapes_hd", CityscapesReleaseParams, "cityscapes_release.CityscapesRelease", ("cityscapes_release",),
     "Cityscapes as released (gtFine labelIds and instanceIds, leftImg8bit photos): label maps -> photo."),
)
"""The adapters built by handing their parameters to their class, declared once: the hook registers each
with a builder that imports the adapter's module (and torch) only when a recipe asks for it."""


def adapter_builder(where: str) -> Callable[[DatasetParams, BuildContext], Any]:
    """The builder of the adapter class `where` ("module.Class" in this package), made from the parameters."""
    module, adapter = where.rsplit(".", 1)

    def build(params: DatasetParams, ctx: BuildContext) -> Any:
        return getattr(import_module(f"{__name__}.{module}"), adapter)(params)

    return build


@hookimpl
def p2p_register_datasets(register: Any) -> None:
    for name, params, where, aliases, summary in ADAPTERS:
        register(name, adapter_builder(where), params=params, aliases=aliases, summary=summary)
    register("pix2pixhd_folders", build_hd_folders, params=HDFoldersParams)
