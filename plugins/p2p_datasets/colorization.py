"""`colorization`: colour photos in CIE Lab (D65), lightness L -> chroma ab.

A is L scaled from 0..100 to [-1, 1] (one channel); B is ab divided by 110 (two channels, the
range of sRGB colours is about -86..98 for a and -108..95 for b), clipped to [-1, 1].

`write_output` turns L and ab back into an sRGB image. The network only produces ab, so it
needs the input's L: pass it as ``write_output(ab, path, input_image=L)``, or let it use the L of
the most recent ``read_input`` call (what ``p2p translate`` does: it reads an image, translates
it, then writes the result). A 3-channel image (L, a, b) needs neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from p2pcore.api import DataReport, P2PError

from .base import FileAdapter, folder_of
from .files import describe_side, in_holdout, list_images, record_errors, scan, size_warnings
from .imagefiles import load_image, to_unit, write_image
from .listing import listed
from .params import ColorizationParams

AB_SCALE = 110.0
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_EPS = (6 / 29) ** 3


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], 3 x H x W (or N x 3 x H x W), to Lab: L in 0..100, a and b roughly -110..110."""
    rgb = rgb.to(torch.float32).clamp(0, 1)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,...jhw->...ihw", _RGB_TO_XYZ, linear) / _WHITE.view(3, 1, 1)
    f = torch.where(xyz > _EPS, xyz.clamp(min=_EPS) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (as :func:`rgb_to_lab` returns) to sRGB in [0, 1]; colours outside sRGB are clipped."""
    lab = lab.to(torch.float32)
    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=-3)
    xyz = torch.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE.view(3, 1, 1)
    linear = torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(_RGB_TO_XYZ), xyz).clamp(0, 1)
    return torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear.clamp(min=1e-12) ** (1 / 2.4) - 0.055
                       ).clamp(0, 1)


def split_lab(rgb_unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An RGB image in [-1, 1] to (L, ab), each scaled to [-1, 1]."""
    lab = rgb_to_lab((rgb_unit + 1) / 2)
    return lab[..., :1, :, :] / 50 - 1, (lab[..., 1:, :, :] / AB_SCALE).clamp(-1, 1)


def join_lab(l_unit: torch.Tensor, ab_unit: torch.Tensor) -> torch.Tensor:
    """(L, ab) in [-1, 1] to an RGB image in [-1, 1]."""
    lab = torch.cat([(l_unit + 1) * 50, ab_unit * AB_SCALE], dim=-3)
    return lab_to_rgb(lab) * 2 - 1


class Colorization(FileAdapter):
    """Colour photos of root/<split>/ (or root/ for training, with an optional hashed holdout)."""

    kind = "colorization"
    a_channels = 1
    b_channels = 2

    def __init__(self, params: ColorizationParams) -> None:
        super().__init__(params)
        self._last_input: tuple[str, torch.Tensor] | None = None

    def layout(self) -> str:
        return "<root>/NAME.jpg, or <root>/train/ and <root>/test/ (or val/) of colour images"

    def folder(self, split: str) -> tuple[Path, bool]:
        root = Path(self.params.root)
        base = folder_of(root, split, fallback=True)
        if base is not None:
            return base, base == root and self.params.test_holdout > 0
        if split == "test" and self.params.test_holdout > 0 and root.is_dir():
            return root, True
        if not root.is_dir():
            raise P2PError(f"data root {root} does not exist", key="data.root", hint=f"expected {self.layout()}")
        raise P2PError(f"no {split} split: expected {root}/{split}/", key="data.root",
                       hint=f"layout: {self.layout()}; or set data.test_holdout")

    def paths(self, split: str) -> list[Path]:
        base, holdout = self.folder(split)
        paths = list(list_images(base).by_stem.values())
        if holdout:
            paths = [p for p in paths if in_holdout(p.stem, self.params.test_holdout) == (split == "test")]
        return paths

    def records(self, split: str) -> tuple[list[Any], list[str]]:
        paths = self.paths(split)
        return paths, [p.stem for p in paths]

    def load(self, record: Path, transform: Any, train: bool) -> dict[str, Any]:
        from p2pcore.api import finish_image, jitter, prepare_image

        (rgb,) = jitter(transform, [prepare_image(load_image(record, 3), self.rule)])
        l_unit, ab_unit = split_lab(finish_image(rgb))
        return {"a": l_unit, "b": ab_unit}

    def read_input(self, path: str | Path, side: str = "a") -> torch.Tensor:
        """L of an image (colour or grey) at native size; remembered for the next write_output."""
        if side != "a":
            raise P2PError("colorization reads only lightness inputs (side a)", file=str(path),
                           hint="translate in the a2b direction")
        l_unit, _ = split_lab(to_unit(load_image(path, 3), self.rule))
        self._last_input = (str(path), l_unit)
        return l_unit

    def write_output(self, image: torch.Tensor, path: str | Path, side: str = "b", *,
                     input_image: torch.Tensor | None = None) -> None:
        """Write ab (with the input's L) or L+ab as an RGB image of `output_bits` bits."""
        if image.shape[0] == 3:
            l_unit, ab = image[:1], image[1:]
        elif image.shape[0] == 2:
            l_unit = input_image if input_image is not None else (self._last_input[1] if self._last_input else None)
            if l_unit is None:
                raise P2PError("writing ab needs the input's lightness", file=str(path),
                               hint="call read_input first, or pass input_image=L")
            if l_unit.shape[0] == 3:  # an RGB input in [-1, 1]
                l_unit, _ = split_lab(l_unit)
            if l_unit.shape[-2:] != image.shape[-2:]:
                raise P2PError(f"the input's L is {tuple(l_unit.shape[-2:])} but the output is "
                               f"{tuple(image.shape[-2:])}", file=str(path),
                               hint="pass the matching input as input_image=")
            ab = image
        else:
            raise P2PError(f"colorization writes 2 (ab) or 3 (Lab) channels, got {image.shape[0]}", file=str(path))
        write_image(join_lab(l_unit.to(ab.device, torch.float32), ab.float()), path, bits=self.params.output_bits)

    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        root = Path(self.params.root)
        paths = listed(report, root, self.layout(), lambda: self.paths(split),
                       f"no images for the {split} split; expected {self.layout()}")
        if paths is None:
            return
        infos = record_errors(report, scan(paths, deep=deep), root)
        grey = [p for p, i in infos.items() if i.channels < 3]
        if grey:
            report.warn(f"{len(grey)} grey image(s) have no colour to learn (ab = 0), e.g. {grey[0].name}")
        describe_side(report, "images", {p: i for p, i in infos.items() if i.channels >= 3}, root=root,
                      channels=3, normalize=self.params.normalize)
        size_warnings(report, infos.values(), self.params, "images")
