"""`pix2pixhd_folders`: your own label maps in the pix2pixHD folder layout, for pix2pixHD (label maps -> photos).

Layout (NVIDIA/pix2pixHD's ``datasets/<name>/``)::

    root/train_label/NAME.png   label ids 0..label_nc-1, one channel, 8- or 16-bit
    root/train_inst/NAME.png    instance ids, one channel, 8-, 16- or 32-bit (PNG up to 16, TIFF or .npy for 32);
                                read when data.instances = true
    root/train_img/NAME.jpg     the photo
    root/test_label/ (test_inst/, test_img/)   the test split; its photos are optional: without them the
                                label maps can be translated (p2p translate) but not scored or shown in grids

Files of one image share their stem (NAME; extensions may differ). An item's `label` holds the label ids
and, with instances, the instance ids as a second channel (ids at or above 2**24 are renumbered per image,
keeping which pixels share an instance, so float32 holds them exactly); `b` is the photo. An
`ignore_index` id (e.g. 255) is allowed beside 0..label_nc-1: give the task the same id (`task.ignore`),
which maps it to an all-zero one-hot. `p2p data check --deep` reads every label map and reports ids
outside 0..label_nc-1.

`p2p translate` reads a label map of a ``*_label/`` folder, each with the instance map of the same name in
the ``*_inst/`` folder beside it.

This module holds the parameters and the builder (torch-free); the adapter is in hd_folders_adapter.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from p2pcore.api import BuildContext, Field, Preprocess

from .params import MAX_SIDE, Jitter, LabelMaps

LABEL_DIR, INSTANCE_DIR, PHOTO_DIR = "{split}_label", "{split}_inst", "{split}_img"


class HDFoldersParams(LabelMaps, Jitter):
    """The pix2pixHD folder layout under `root`; sizes as pix2pixHD's global stage (width 1024)."""

    root: str = Field(description="folder holding train_label/ and train_img/ (train_inst/ with instances), and "
                                  'test_label/ (test_img/, test_inst/); "" when the adapter only reads files given '
                                  "to p2p translate")
    instances: bool = Field(True, description="read the instance maps of <split>_inst/ with the label maps, for "
                                              "pix2pixHD's instance boundaries and features; false: label maps alone")
    label_nc: int | None = Field(None, ge=1, le=1024, description="label ids the maps hold, 0..label_nc-1 (the "
                                 "task's label_nc): `p2p data check --deep` reports other values; unset: not checked")
    ignore_index: int | None = Field(None, ge=0, le=65535, description="an id of pixels that belong to no class "
                                     "(e.g. 255), allowed beside 0..label_nc-1; set task.ignore to the same id")
    preprocess: Preprocess = Field("scale_width", description="as for paired_folders; pix2pixHD: scale_width to "
                                   "1024 for the global stage, none (native size) for the local one")
    load_size: int = Field(1024, ge=1, le=MAX_SIDE, description="width after scale_width (or side after resize)")
    crop_size: int = Field(512, ge=1, le=MAX_SIDE, description="side of the square crop (crop modes only)")

    @model_validator(mode="after")
    def _ignore_outside_the_labels(self) -> HDFoldersParams:
        if self.label_nc is not None and self.ignore_index is not None and self.ignore_index < self.label_nc:
            raise ValueError(f"ignore_index ({self.ignore_index}) is one of the label ids 0..{self.label_nc - 1}; "
                             "it must name an id outside them")
        return self


def build_hd_folders(params: HDFoldersParams, ctx: BuildContext) -> Any:
    """Label maps (with instance maps) -> photos in pix2pixHD's folders: <split>_label, _inst and _img."""
    from .hd_folders_adapter import HDFolders

    return HDFolders(params)
