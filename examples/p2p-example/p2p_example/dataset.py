"""`csv_pairs` dataset: parameters and builder (torch-free; the adapter is in csv_pairs.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import model_validator

from p2pcore.api import BuildContext, DatasetParams, Field, ItemSize, Preprocess


class CSVPairsParams(DatasetParams):
    file: str = Field(description="CSV listing the pairs: a header naming columns `a` and `b` (image paths, "
                                  "relative to the CSV's folder) and optionally `split` (train or test; "
                                  "default train)")
    a_channels: int = Field(3, ge=1, le=64, description="channels of the input images (1 grey, 3 colour)")
    b_channels: int = Field(3, ge=1, le=64, description="channels of the target images")
    preprocess: Preprocess = Field("resize_and_crop", description="resize_and_crop, crop, scale_width, "
                                                                  "scale_width_and_crop or none")
    load_size: int = Field(286, ge=1, le=8192, description="side images are resized to before cropping")
    crop_size: int = Field(256, ge=1, le=8192, description="side of the square crop")
    flip: bool = Field(True, description="mirror both images of a pair left-right at random when training")

    @model_validator(mode="after")
    def _crop_fits(self) -> CSVPairsParams:
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ValueError(f"crop_size ({self.crop_size}) must not exceed load_size ({self.load_size})")
        return self

    def item_size(self) -> ItemSize | None:
        """The crop's side when cropping: `p2p validate` checks it against the generator's size multiple."""
        return ItemSize(self.crop_size, "crop_size") if self.preprocess.endswith("crop") else None

    def image_channels(self) -> Mapping[str, int]:
        """The images of an item and their channels: `p2p validate` checks them against what the task reads."""
        return {"a": self.a_channels, "b": self.b_channels}

    def image_channel_keys(self) -> Mapping[str, str]:
        """The parameters that set them, named by errors about channel counts."""
        return {"a": "a_channels", "b": "b_channels"}


def build_csv_pairs(params: CSVPairsParams, ctx: BuildContext) -> Any:
    """Pairs of image files listed in a CSV (columns a, b and an optional split)."""
    from .csv_pairs import CSVPairs

    return CSVPairs(params)
