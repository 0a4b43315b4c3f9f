"""Which files a dataset adapter reads and writes, in its own word.

An adapter may declare ``input_suffixes(key)`` (what ``read_input`` reads for an image key) and
``output_suffixes(key)`` (what ``write_output`` writes); one that does not reads and writes p2p's image
formats. ``p2p translate`` picks the files of a folder and checks its outputs by these before any network
runs, so an adapter of ``.npy`` frames or ``.exr`` files is used on its own formats. Torch-free.

p2p's own image formats, those :mod:`p2pcore.imageio` reads and writes, are tabled here too: this module is
below the image I/O, so that everything that only names formats stays free of Pillow and NumPy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                            ".npy"})
WRITE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy", ".bmp", ".webp", ".ppm", ".pgm")
_SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff", ".npy")


def write_suffixes(bits: int = 8) -> tuple[str, ...]:
    """The formats :func:`p2pcore.imageio.write_image` writes with `bits` per sample, the usual ones first:
    adapters declare them as their ``output_suffixes``, so ``p2p translate`` refuses a 16-bit JPEG before any
    network runs."""
    return _SIXTEEN_BIT_SUFFIXES if bits == 16 else WRITE_SUFFIXES


DEFAULT_INPUTS: tuple[str, ...] = tuple(sorted(IMAGE_SUFFIXES))
DEFAULT_OUTPUTS: tuple[str, ...] = WRITE_SUFFIXES


def declared(adapter: Any, member: str, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """The suffixes an adapter's `member` (``input_suffixes`` or ``output_suffixes``) gives for image `key`:
    lower case, in its order, without repeats; `default` when it has no such member. A malformed answer is
    the plugin's mistake and says so."""
    method = getattr(adapter, member, None)
    if method is None:
        return default
    value = method(key)
    items = [] if isinstance(value, str | bytes) or not isinstance(value, Iterable) else list(value)
    good = bool(items) and all(isinstance(s, str) and s.startswith(".") and len(s) > 1 for s in items)
    if not good:
        raise P2PError(f"dataset adapter {type(adapter).__name__}: {member}({key!r}) returned {value!r}",
                       hint="a mistake in the plugin providing it: return file suffixes with their dot, "
                            "e.g. ('.png', '.npy')")
    return tuple(dict.fromkeys(s.lower() for s in items))


def _matches(path: Path, suffixes: tuple[str, ...]) -> bool:
    """Whether a file name ends in one of the suffixes (".nii.gz" included), with a stem before it."""
    name = path.name.lower()
    return any(name.endswith(s) and len(name) > len(s) for s in suffixes)


@dataclass(frozen=True)
class Formats:
    """The suffixes a translation reads (for its input image key) and writes (for its output key), and
    how errors name the adapter they come from ("dataset 'npy_frames'")."""

    adapter: str
    input_key: str
    output_key: str
    inputs: tuple[str, ...] = DEFAULT_INPUTS
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS

    @classmethod
    def of(cls, adapter: Any, *, name: str, input_key: str, output_key: str) -> Formats:
        """What `adapter` (built from the recipe's dataset `name`) declares for these image keys."""
        return cls(f"dataset {name!r}", input_key, output_key,
                   declared(adapter, "input_suffixes", input_key, DEFAULT_INPUTS),
                   declared(adapter, "output_suffixes", output_key, DEFAULT_OUTPUTS))

    def reads(self, path: Path) -> bool:
        return _matches(path, self.inputs)

    def writes(self, path: Path) -> bool:
        return _matches(path, self.outputs)

    def reads_hint(self) -> str:
        return f"{self.adapter} reads {', '.join(self.inputs)} for image key {self.input_key!r}"

    def writes_hint(self) -> str:
        return f"{self.adapter} writes {', '.join(self.outputs)} for image key {self.output_key!r}"
