"""The dataset-adapter contract: the keys of an item, the preprocessing modes and what an adapter offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from p2pcore.api.base import Params
from p2pcore.api.datareport import DataReport

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["BATCH_KEYS", "DataReport", "DatasetAdapter", "DatasetParams", "Interpolation", "ItemCount", "ItemSize",
           "Preprocess"]



BATCH_KEYS: Mapping[str, str] = {
    "a": "the input side's image, float32 C x H x W in [-1, 1] (a_channels channels)",
    "b": "the output side's image, likewise (b_channels channels); absent for single-side datasets",
    "name": "a name for the item (its file's stem): output file names and error messages use it",
    "skipped": "how many unreadable records were passed over to produce this item (0 normally); training "
               "counts them as skipped_files",
}
"""The keys of a dataset item that p2p reads. Further image keys (pix2pixHD's ``label``) are declared in the
adapter's `channels` and the task's ``TaskSpec.images``; other keys (``name_b``, ``label_file``) pass through
to the task untouched. Every image of one item has the same H x W."""

Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
"""The resizing and cropping modes of :func:`make_jitter`, as recipes spell them."""

Interpolation = Literal["bicubic", "bilinear"]
"""How :func:`make_jitter` resamples images (label maps given as masks are always resampled nearest)."""


@runtime_checkable
class DatasetAdapter(Protocol):
    """What a dataset's `build` returns; building it must not touch the disk (``p2p translate`` rebuilds
    one from a checkpoint on a machine without the data).

    `dataset(split, train=...)` gives items with the :data:`BATCH_KEYS` (``train=True`` adds random
    jitter: :func:`make_jitter`); `read_input` and `write_output` are what ``p2p translate`` reads and
    writes, converted and normalised as in training.

    Optional: ``check(split, *, deep=False) -> DataReport`` scans a split without training (headers only
    unless `deep`): ``p2p data check`` prints it and training refuses to start unless it is ``ok``;
    ``channels``, a mapping of further batch image keys to their channel counts (``{"label": 2}``); and
    ``display(images, key)``, turning an N x C x H x W batch of one image key into RGB in [-1, 1] for sample
    grids (a label map in its colour palette).

    Optional, the files ``p2p translate`` gives ``read_input`` and asks of ``write_output`` (the adapter is the
    authority on its formats: a folder is translated file by file where its suffix is one it reads):
    ``input_suffixes(key) -> Collection[str]``, the suffixes with their dot (``{".npy"}``, ``".nii.gz"``
    too) that ``read_input`` reads for an image key, and ``output_suffixes(key) -> Collection[str]``, those
    ``write_output`` writes for one, the usual first. Without them, p2p's image formats:
    :data:`IMAGE_SUFFIXES` and :func:`write_suffixes` (8 bits)."""

    a_channels: int
    b_channels: int

    def dataset(self, split: str, *, train: bool) -> torch.utils.data.Dataset: ...

    def read_input(self, path: str, side: str = "a") -> torch.Tensor: ...

    def write_output(self, image: torch.Tensor, path: str, side: str = "b") -> None: ...



class DatasetParams(Params):
    """Base of every dataset adapter's parameters: what p2p reads of a dataset without building it
    (the sizes its items come in, the channels of their images) is declared here rather than guessed
    from field names."""

    def item_size(self) -> ItemSize | None:
        """The side of the square images every training item comes in, when these parameters fix one (a
        square crop, a rendered size); None when the items keep sizes that vary (native sizes, scale_width).
        ``p2p validate`` checks it against each generator's size multiple, without building the dataset."""
        return None

    def image_channels(self) -> Mapping[str, int] | None:
        """The image keys of the items and the channels of each, as the built adapter gives them (its
        ``a_channels``, ``b_channels`` and ``channels``): ``{"a": 1, "b": 3}``, a label-map dataset
        ``{"label": 2, "b": 3}``. None when these parameters do not say. ``p2p validate`` checks that the
        task's image keys (``TaskSpec.images``) are among them, and tasks see them in their recipe check."""
        return None

    def item_count(self, split: str) -> ItemCount | None:
        """How many items `split` holds when these parameters fix it (a rendered dataset's scene count), and
        the parameter that sets it; None when the files on disk decide. ``p2p validate`` estimates the memory
        an epoch's shuffled order takes from it, so a count no machine holds is refused before training."""
        return None

    def image_channel_keys(self) -> Mapping[str, str]:
        """For each image key whose channel count a parameter sets, that parameter as written in the
        ``[data]`` table (``{"a": "a.channels"}``), which error messages name; keys the dataset fixes are
        left out."""
        return {}


@dataclass(frozen=True)
class ItemSize:
    """The fixed side, in pixels, of a dataset's training items, and the parameter that sets it (`key`, as
    written in the ``[data]`` table: ``crop_size``), which error messages name."""

    side: int
    key: str


@dataclass(frozen=True)
class ItemCount:
    """The number of items of a split, and the parameter that sets it (`key`, as written in the ``[data]``
    table: ``train_count``), which error messages name."""

    count: int
    key: str
