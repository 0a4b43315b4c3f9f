"""A dataset adapter written as a third party would write one, owning a file format p2p does not know.

`thermal_frames` reads and writes NumPy archives (``.npz``) holding one ``frame``: an H x W float32
temperature in kelvin, mapped to [-1, 1] over a window. It declares that format through the adapter
contract's ``input_suffixes``/``output_suffixes``, so ``p2p translate`` translates folders of ``.npz`` files
and refuses anything else. Training items are rendered in memory (the target is the frame upside down).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p2pcore.api import BuildContext, DatasetParams, Field, P2PError, hookimpl

P2P_API = ">=1.3,<2"  # input_suffixes/output_suffixes came with 1.1, DatasetParams with 1.3

SUFFIX = ".npz"


class ThermalFramesParams(DatasetParams):
    size: int = Field(32, ge=8, description="side of the rendered training frames")
    count: int = Field(4, ge=1, description="rendered frames per split")
    low: float = Field(250.0, description="kelvin mapped to -1")
    high: float = Field(350.0, description="kelvin mapped to 1")


class Frames:
    """Rendered frames: warm blobs on a cool background, the target flipped upside down."""

    def __init__(self, params: ThermalFramesParams, split: str) -> None:
        self.params, self.seed = params, 0 if split == "train" else 1000

    def __len__(self) -> int:
        return self.params.count

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        generator = torch.Generator().manual_seed(self.seed + index)
        a = torch.rand(1, self.params.size, self.params.size, generator=generator).mul_(2).sub_(1)
        return {"a": a, "b": a.flip(-2), "name": f"frame_{index:03d}", "skipped": 0}


class ThermalFrames:
    a_channels = 1
    b_channels = 1

    def __init__(self, params: ThermalFramesParams) -> None:
        self.params = params

    def dataset(self, split: str, *, train: bool) -> Frames:
        return Frames(self.params, split)

    def input_suffixes(self, key: str) -> tuple[str, ...]:
        return (SUFFIX,)

    def output_suffixes(self, key: str) -> tuple[str, ...]:
        return (SUFFIX,)

    def read_input(self, path: str, side: str = "a") -> Any:
        import numpy as np
        import torch

        try:
            with np.load(path, allow_pickle=False) as archive:
                kelvin = torch.from_numpy(archive["frame"].astype(np.float32))
        except (OSError, ValueError, KeyError) as exc:
            raise P2PError(f"not a thermal frame archive: {exc}", file=path,
                           hint="give .npz files holding an H x W `frame`") from None
        p = self.params
        return kelvin.sub(p.low).mul_(2 / (p.high - p.low)).sub_(1).clamp_(-1, 1)[None]

    def write_output(self, image: Any, path: str, side: str = "b") -> None:
        import numpy as np

        p = self.params
        kelvin = image[0].detach().cpu().float().add(1).mul_((p.high - p.low) / 2).add_(p.low)
        with Path(path).open("wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, frame=kelvin.numpy())


def build_thermal_frames(params: ThermalFramesParams, ctx: BuildContext) -> ThermalFrames:
    """Thermal frames stored as NumPy archives of kelvin."""
    return ThermalFrames(params)


@hookimpl
def p2p_register_datasets(register: Any) -> None:
    register("thermal_frames", build_thermal_frames, params=ThermalFramesParams)
