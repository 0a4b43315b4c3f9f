"""Image files as tensors, without loss of precision.

Three layers, each usable alone:

* :func:`probe_image` reads a file's header (and looks at its last bytes for truncation):
  size, channel count, bits per sample. It never decodes pixels.
* :func:`load_image` decodes pixels as stored: a C x H x W tensor of ``uint8``, ``uint16``,
  ``int32`` or ``float32``. 16-bit PNG and TIFF stay 16-bit; multi-page TIFF and ``.npy`` stacks
  give one channel per page or plane.
* :func:`to_unit` maps stored values to float32 in [-1, 1] under a :class:`Normalization` rule.

:func:`read_image` is ``to_unit(load_image(...))``; :func:`write_image` is its inverse, with 8 or
16 bits per sample. torch is imported inside the functions, so importing this module is cheap.

Formats: PNG (1, 2, 4, 8, 16 bits; grey, grey+alpha, RGB, RGBA, palette), JPEG, TIFF (one page
or a multi-page stack; 8/16-bit, int32, float32 pages), BMP, WebP, PPM/PGM through Pillow, and
NumPy ``.npy`` arrays (H x W, H x W x C, or C x H x W: an array is taken as channels-first when
its first axis is shorter than its last).

Limits: an image whose header declares more than ``P2P_MAX_IMAGE_PIXELS`` pixels (an environment
variable, read at each check; default 100 million, so 10000 x 10000 passes and 12000 x 12000 does
not) is refused with a :class:`P2PError` before any pixel is decoded, by :func:`probe_image` and
:func:`load_image` alike. An image of more than 4 channels (a TIFF or ``.npy`` stack) counts
``channels / 4`` pixels per pixel. Pillow's own limit, ``PIL.Image.MAX_IMAGE_PIXELS``, is kept equal
to it, so Pillow never decodes what p2p would refuse.

Orientation: an EXIF orientation tag (JPEG, TIFF, WebP; PNG when its eXIf chunk comes before the
image data) is applied on reading, as ``PIL.ImageOps.exif_transpose`` does, whichever decoder reads
the file; :func:`probe_image` reports the width and height of the upright image.

Modules, one job each: :mod:`~p2pcore.imageio.limits` (the size limit, the errors naming a file),
:mod:`~p2pcore.imageio.headers` (reading headers), :mod:`~p2pcore.imageio.pillow` (opening with Pillow,
EXIF orientation), :mod:`~p2pcore.imageio.probe`, :mod:`~p2pcore.imageio.decode`,
:mod:`~p2pcore.imageio.normalization` (values to [-1, 1], channel matching) and
:mod:`~p2pcore.imageio.write`. The suffix tables live in :mod:`p2pcore.formats`, below this package.
"""

from p2pcore.formats import IMAGE_SUFFIXES, WRITE_SUFFIXES, write_suffixes
from p2pcore.imageio.decode import load_image, read_image
from p2pcore.imageio.headers import ImageInfo
from p2pcore.imageio.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, max_image_pixels
from p2pcore.imageio.normalization import FULL_RANGE as FULL_RANGE  # public before the split, kept importable
from p2pcore.imageio.normalization import Normalization, full_scale, match_channels, to_unit
from p2pcore.imageio.probe import probe_image
from p2pcore.imageio.write import write_image

__all__ = ["IMAGE_SUFFIXES", "WRITE_SUFFIXES", "ImageInfo", "Normalization", "probe_image", "load_image",
           "match_channels", "to_unit", "read_image", "write_image", "write_suffixes", "full_scale", "max_image_pixels",
           "MAX_PIXELS_ENV", "DEFAULT_MAX_PIXELS"]
