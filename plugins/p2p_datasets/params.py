"""Parameters of the built-in dataset adapters (pydantic only: importing this never imports torch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, field_validator, model_validator

from p2pcore.api import DatasetParams, Field, Interpolation, ItemCount, ItemSize, Params, Preprocess

if TYPE_CHECKING:
    from p2pcore.api import Alignment

KAIST_TRAIN_SETS = tuple(f"set{i:02d}" for i in range(6))
KAIST_TEST_SETS = tuple(f"set{i:02d}" for i in range(6, 12))
MAX_SIDE = 8192  # load_size and crop_size: a resized image of 8192 x 8192 is 67 megapixels


# -- normalisation of stored values -------------------------------------------------------------------

class FullRange(Params):
    """The sample type's full range maps to [-1, 1] (0..255, 0..65535; floats are taken as 0..1)."""

    mode: Literal["full_range"] = Field("full_range", description="the sample type's full range")


class FixedRange(Params):
    """Stored values `min`..`max` map to [-1, 1]; values outside are clipped."""

    mode: Literal["fixed"] = Field(description="a fixed window in stored units")
    min: float = Field(description="stored value that becomes -1")
    max: float = Field(description="stored value that becomes 1")

    @model_validator(mode="after")
    def _ordered(self) -> FixedRange:
        if self.max <= self.min:
            raise ValueError(f"max ({self.max}) must be greater than min ({self.min})")
        return self


class PercentileRange(Params):
    """Per image, the `low` and `high` percentiles of its values map to [-1, 1] (clipped outside)."""

    mode: Literal["percentile"] = Field(description="a window set by each image's own percentiles")
    low: float = Field(1.0, ge=0, lt=100, description="percentile that becomes -1")
    high: float = Field(99.0, gt=0, le=100, description="percentile that becomes 1")

    @model_validator(mode="after")
    def _ordered(self) -> PercentileRange:
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        return self


def _mode_table(value: Any) -> Any:
    return {"mode": value} if isinstance(value, str) else value


Normalize = Annotated[FullRange | FixedRange | PercentileRange, Field(discriminator="mode"),
                      BeforeValidator(_mode_table)]


# -- shared groups ------------------------------------------------------------------------------------

class Side(Params):
    """One side of a pair stored as a folder of images."""

    dir: str = Field(description="folder of this side's images, relative to the root (or root/<split>)")
    channels: int = Field(3, ge=1, le=64, description="channels the network sees: 1 grey/thermal, "
                                                      "3 colour, or the depth of N-channel stacks")


class TwoSides(DatasetParams):
    """Datasets whose items carry `a` and `b` with channel counts set by `a_channels` and `b_channels`."""

    def image_channels(self) -> Mapping[str, int]:
        return {"a": self.a_channels, "b": self.b_channels}  # type: ignore[attr-defined]

    def image_channel_keys(self) -> Mapping[str, str]:
        return {"a": "a_channels", "b": "b_channels"}


class LabelMaps(DatasetParams):
    """Datasets whose items carry `label` (label ids, with `instances` the instance ids as a second channel)
    and the photo `b`."""

    def image_channels(self) -> Mapping[str, int]:
        return {"label": 2 if self.instances else 1, "b": 3}  # type: ignore[attr-defined]

    def image_channel_keys(self) -> Mapping[str, str]:
        return {"label": "instances"}


class Jitter(DatasetParams):
    """Resizing, cropping and mirroring shared by the file-based adapters, and file handling."""

    preprocess: Preprocess = Field(
        "resize_and_crop",
        description="resize_and_crop: resize to load_size x load_size, then crop crop_size (random when "
                    "training, centred otherwise); crop: crop without resizing; scale_width: width "
                    "becomes load_size, aspect kept; scale_width_and_crop: that, then crop; none: native "
                    "size (the engine pads to the generator's multiple)")
    load_size: int = Field(286, ge=1, le=MAX_SIDE, description=f"size (or width) images are resized to before "
                                                               f"cropping, 1 to {MAX_SIDE}")
    crop_size: int = Field(256, ge=1, le=MAX_SIDE, description=f"side of the square crop, 1 to {MAX_SIDE}")
    flip: bool = Field(True, description="mirror left-right at random when training (both sides together)")
    test_crop: bool = Field(False, description="crop the test split (centred) as training crops; false: the whole "
                            "image, as the reference test (resize_and_crop at crop_size x crop_size, "
                            "scale_width_and_crop at width load_size, crop at the native size)")
    interpolation: Interpolation = Field(
        "bicubic", description="resampling used when resizing images (label maps always use nearest)")
    skip_corrupt: bool = Field(False, description="pass over unreadable files with a warning (counted in "
                                                  "metrics as skipped_files) instead of stopping")
    normalize: Normalize = Field(
        default_factory=FullRange,
        description='how stored values map to [-1, 1]: "full_range" (8-bit 0..255, 16-bit 0..65535), '
                    '{ mode = "fixed", min = .., max = .. } in stored units, or '
                    '{ mode = "percentile", low = 1, high = 99 } per image')
    output_bits: Literal[8, 16] = Field(8, description="bits per sample of images written by p2p translate "
                                                       "(16 needs .png, .tif or .npy outputs)")

    @model_validator(mode="after")
    def _crop_fits(self) -> Jitter:
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ValueError(f"crop_size ({self.crop_size}) must not exceed load_size ({self.load_size}) "
                             f"with preprocess = {self.preprocess!r}")
        return self

    def item_size(self) -> ItemSize | None:
        """The crop's side when the preprocessing crops; other modes keep sizes that vary with the images."""
        return ItemSize(self.crop_size, "crop_size") if self.preprocess.endswith("crop") else None


class Registered(DatasetParams):
    """Paired adapters of two cameras that may not be registered: an `align` block maps a onto b."""

    align: dict[str, Any] | None = Field(
        None, description="the camera pair's registration, as `p2p data register` writes it ([data.align]: "
                          "model, matrix, size_a, size_b, residual): a is warped onto b's grid and both are "
                          "cropped to the common field of view before the resize and crop")

    @field_validator("align")
    @classmethod
    def _alignment(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from p2pcore.api import Alignment  # NumPy only: validating a recipe stays torch-free

            Alignment.from_table(value, key="data.align")  # a P2PError naming the key
        return value

    def alignment(self) -> Alignment | None:
        """The registration the `align` block describes, or None."""
        if self.align is None:
            return None
        from p2pcore.api import Alignment

        return Alignment.from_table(self.align, key="data.align")


# -- adapters ----------------------------------------------------------------------------------------

class PairedFoldersParams(Registered, Jitter):
    root: str = Field(description="data folder holding <a.dir>/ and <b.dir>/ (or train/ and test/ "
                                  "folders that each hold them)")
    a: Side = Field(default_factory=lambda: Side(dir="A"), description="input side: { dir, channels }")
    b: Side = Field(default_factory=lambda: Side(dir="B"), description="target side: { dir, channels }")
    test_holdout: float = Field(0.0, ge=0, lt=1, description="when root has no test/ (or val/) folder, this "
                                "fraction of the pairs, chosen by a hash of the file name, is the test split")

    def image_channels(self) -> Mapping[str, int]:
        return {"a": self.a.channels, "b": self.b.channels}

    def image_channel_keys(self) -> Mapping[str, str]:
        return {"a": "a.channels", "b": "b.channels"}


class SyntheticThermalParams(DatasetParams):
    size: int = Field(64, ge=16, le=2048, description="side of the square images, in pixels")
    train_count: int = Field(400, ge=1, description="number of training scenes")
    test_count: int = Field(16, ge=1, description="number of test scenes")
    seed: int = Field(0, ge=0, description="scene i of a split is the same for the same seed")
    flip: bool = Field(True, description="mirror left-right at random when training")
    paired: bool = Field(True, description="false: each thermal image comes with the colour image of another "
                                           "scene, for unpaired methods (CycleGAN)")
    output_bits: Literal[8, 16] = Field(8, description="bits per sample of images written by p2p translate")

    def item_size(self) -> ItemSize:
        """Every scene is rendered `size` pixels square."""
        return ItemSize(self.size, "size")

    def item_count(self, split: str) -> ItemCount:
        """Scenes are rendered on demand: the counts are parameters."""
        return ItemCount(self.train_count, "train_count") if split == "train" else ItemCount(self.test_count,
                                                                                             "test_count")

    def image_channels(self) -> Mapping[str, int]:
        """Thermal scenes of one channel, colour images of three."""
        return {"a": 1, "b": 3}


class SyntheticLabelsParams(LabelMaps):
    size: int = Field(64, ge=32, le=2048, description="side of the square scenes, in pixels")
    train_count: int = Field(200, ge=1, description="number of training scenes")
    test_count: int = Field(8, ge=1, description="number of test scenes")
    seed: int = Field(0, ge=0, description="scene i of a split is the same for the same seed")
    instances: bool = Field(True, description="give instance maps with the label maps")
    flip: bool = Field(True, description="mirror left-right at random when training")

    def item_size(self) -> ItemSize:
        """Every scene is rendered `size` pixels square."""
        return ItemSize(self.size, "size")

    def item_count(self, split: str) -> ItemCount:
        """Scenes are rendered on demand: the counts are parameters."""
        return ItemCount(self.train_count, "train_count") if split == "train" else ItemCount(self.test_count,
                                                                                             "test_count")


class CityscapesReleaseParams(LabelMaps, Jitter):
    root: str = Field(description='the unpacked Cityscapes release: root/gtFine and root/leftImg8bit; "" when '
                                  "the adapter only reads files given to p2p translate")
    instances: bool = Field(True, description="read the instance maps (*_gtFine_instanceIds.png) with the label "
                                              "maps, for pix2pixHD's instance boundaries and features")
    test_split: Literal["val", "test"] = Field("val", description="release split used as the test split (sample "
                                                                 "grids): val, whose labels are public")
    preprocess: Preprocess = Field("scale_width", description="as for paired_folders; pix2pixHD: scale_width to "
                                   "1024 (1024 x 512) for the global stage, none (2048 x 1024) for the local one")
    load_size: int = Field(1024, ge=1, le=MAX_SIDE, description="width after scale_width (or side after resize)")
    crop_size: int = Field(512, ge=1, le=MAX_SIDE, description="side of the square crop (crop modes only)")


class AlignedParams(TwoSides, Jitter):
    root: str = Field(description="folder with train/ and test/ (or val/) of side-by-side A|B images")
    direction: Literal["AtoB", "BtoA"] = Field("AtoB", description="AtoB: the left half is the input; "
                                                                   "BtoA: the right half is")
    a_channels: int = Field(3, ge=1, le=4, description="channels of the input half")
    b_channels: int = Field(3, ge=1, le=4, description="channels of the target half")


class UnalignedParams(TwoSides, Jitter):
    root: str = Field(description="folder with trainA/ trainB/ and testA/ testB/ of unpaired images")
    a_dir: str = Field("{split}A", description="folder of domain A under root; {split} is train or test (val)")
    b_dir: str = Field("{split}B", description="folder of domain B under root, likewise")

    @field_validator("a_dir", "b_dir")
    @classmethod
    def _split_template(cls, value: str) -> str:
        try:
            value.format(split="train")
        except (KeyError, IndexError, ValueError):
            raise ValueError("may name no placeholder but {split}") from None
        return value
    a_channels: int = Field(3, ge=1, le=64, description="channels of domain A images")
    b_channels: int = Field(3, ge=1, le=64, description="channels of domain B images")


class SingleParams(Jitter):
    root: str = Field("", description='folder of input images (root/<split> when present); "" when the '
                                      "adapter only converts files given to p2p translate")
    channels: int = Field(3, ge=1, le=64, description="channels of the input images")
    out_channels: int = Field(3, ge=1, le=64, description="channels of the images the model produces")
    preprocess: Preprocess = Field("none", description="as for paired_folders; default: native size")
    flip: bool = Field(False, description="mirror left-right at random when training")

    def image_channels(self) -> Mapping[str, int]:
        """Items carry the input only (`out_channels` sizes what the model makes, not an image of the items)."""
        return {"a": self.channels}

    def image_channel_keys(self) -> Mapping[str, str]:
        return {"a": "channels"}


class KaistParams(TwoSides, Registered, Jitter):
    root: str = Field(description="KAIST multispectral root holding setXX/VYYY/{lwir,visible}/I*.jpg")
    train_sets: list[str] = Field(default_factory=lambda: list(KAIST_TRAIN_SETS),
                                  description="sets of the training split (the paper: set00..set05)")
    test_sets: list[str] = Field(default_factory=lambda: list(KAIST_TEST_SETS),
                                 description="sets of the test split (the paper: set06..set11)")
    step: int = Field(1, ge=1, description="keep every step-th frame of each video (frames are nearly "
                                           "duplicates at full rate)")
    a_channels: int = Field(1, ge=1, le=3, description="channels of the thermal (lwir) input")
    b_channels: int = Field(3, ge=1, le=3, description="channels of the visible target")


class ColorizationParams(Jitter):
    root: str = Field(description="folder of colour images (root/train, root/test when present)")
    test_holdout: float = Field(0.0, ge=0, lt=1, description="when root has no test/ (or val/) folder, this "
                                "fraction of the images, chosen by a hash of the file name, is the test split")

    def image_channels(self) -> Mapping[str, int]:
        """L (one channel) in, ab (two) out."""
        return {"a": 1, "b": 2}


class CityscapesLabelsParams(Jitter):
    root: str = Field(description="folder with train/ and test/ (or val/) of side-by-side photo|label "
                                  "images, the colour-coded label map on one half")
    photo_side: Literal["left", "right"] = Field("left", description="which half holds the photo")
    ignore_colors: bool = Field(True, description="also match the colours of Cityscapes' non-train "
                                "classes (void, parking, rail track, ...) and give those pixels label 255; "
                                "false matches every pixel to the nearest of the 19 train colours")
    write_as: Literal["color", "train_ids"] = Field(
        "color", description="p2p translate writes colour-coded label maps, or 8-bit train-ID maps "
                             "(255 = ignore)")

    def image_channels(self) -> Mapping[str, int]:
        """The photo in, the label map as one channel of train IDs out (items also carry the ID map as
        `label`, which is not an image the networks see)."""
        return {"a": 3, "b": 1}
