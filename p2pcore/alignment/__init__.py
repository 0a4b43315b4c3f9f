"""Registration of paired cameras: the transform that maps a's pixels (a thermal image, say) onto b's (the
colour image of the same rig), so that a pair taken by two cameras of different resolution and field of
view can be made pixel-aligned (a warped onto b's grid, both cropped to the common field of view).

* :func:`estimate_alignment` finds it from the pairs' images (their gradient structure, correlated over
  many pairs, coarse to fine);
* :func:`estimate_from_points` from point pairs a person picked (:func:`read_points` reads a file of them);
* :class:`Alignment` holds it, reads and writes a recipe's ``[data.align]`` block, and applies it.

Modules: :mod:`~p2pcore.alignment.geometry` (models, frames, the common box; NumPy only),
:mod:`~p2pcore.alignment.transform` (:class:`Alignment`), :mod:`~p2pcore.alignment.points`,
:mod:`~p2pcore.alignment.features` (gradient structure, the pyramid) and
:mod:`~p2pcore.alignment.estimate`. Importing this package does not import torch; the image-based
estimate imports it when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2pcore.alignment.geometry import MODELS, Size
from p2pcore.alignment.points import estimate_from_points, read_points
from p2pcore.alignment.transform import Alignment

if TYPE_CHECKING:
    from p2pcore.alignment.estimate import estimate_alignment

__all__ = ["MODELS", "Alignment", "Size", "estimate_alignment", "estimate_from_points", "read_points"]


def __getattr__(name: str) -> Any:
    if name == "estimate_alignment":
        from p2pcore.alignment.estimate import estimate_alignment

        return estimate_alignment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
