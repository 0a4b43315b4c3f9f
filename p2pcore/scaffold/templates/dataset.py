"""`p2p new plugin --kind dataset`: rendered stripes, no files."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="rendered stripes: a grey pattern (1 channel) -> its colouring (3 channels); no files",
    entry='''
from p2pcore.api import BuildContext, DataReport, DatasetParams, Field, P2PError, hookimpl

SPLITS = ("train", "test")


class $NameParams(DatasetParams):
    size: int = Field(32, ge=8, le=1024, description="side of the square images, in pixels")
    train_count: int = Field(64, ge=1, description="images in the train split")
    test_count: int = Field(8, ge=1, description="images in the test split")
    seed: int = Field(0, ge=0, description="image i of a split is the same for the same seed")


class $NameAdapter:
    """Grey stripes (a, 1 channel) and the same stripes coloured (b, 3 channels), rendered on demand."""

    a_channels = 1
    b_channels = 3

    def __init__(self, params: $NameParams) -> None:
        self.params = params

    def dataset(self, split: str, *, train: bool) -> Any:
        if split not in SPLITS:
            raise P2PError(f"$name has no split {split!r}", key="data", hint=f"splits: {', '.join(SPLITS)}")
        from $name.network import Stripes

        count = self.params.train_count if split == "train" else self.params.test_count
        return Stripes(self.params.size, count, seed=self.params.seed + (0 if split == "train" else 1_000_003),
                       flip=train)

    def check(self, split: str = "train", *, deep: bool = False) -> DataReport:
        """What `p2p data check` shows: the split's size, and with `deep` every item's values checked."""
        report = DataReport("$name", split, "(rendered, no files)", deep=deep)
        if split not in SPLITS:
            report.problem(f"$name has no split {split!r}; splits: {', '.join(SPLITS)}")
            return report.finish()
        report.pairs = self.params.train_count if split == "train" else self.params.test_count
        size = self.params.size
        report.facts["A: grey stripes"] = f"{report.pairs} images, 1 ch, {size} x {size} px"
        report.facts["B: coloured stripes"] = f"{report.pairs} images, 3 ch, {size} x {size} px"
        if deep:
            data = self.dataset(split, train=False)
            for i in range(len(data)):
                item = data[i]
                for side in ("a", "b"):
                    if not bool(item[side].isfinite().all()) or float(item[side].abs().max()) > 1:
                        report.problem(f"{item['name']}: side {side} is outside [-1, 1]", kind="range")
        return report.finish()

    def read_input(self, path: str, side: str = "a") -> Any:
        from p2pcore.api import read_image

        return read_image(path, self.a_channels if side == "a" else self.b_channels)

    def write_output(self, image: Any, path: str, side: str = "b") -> None:
        from p2pcore.api import write_image

        write_image(image, path)


def build(params: $NameParams, ctx: BuildContext) -> $NameAdapter:
    """Rendered stripes: a grey pattern (1 channel) -> its colouring (3 channels); no files."""
    return $NameAdapter(params)


@hookimpl
def p2p_register_datasets(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    module='''
from typing import Any

import torch


class Stripes(torch.utils.data.Dataset):
    """Item i: stripes of a random angle and frequency in grey, and coloured by a fixed mapping."""

    def __init__(self, size: int, count: int, *, seed: int, flip: bool) -> None:
        self.size, self.count, self.seed, self.flip = size, count, seed, flip

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.count:
            raise IndexError(index)
        g = torch.Generator().manual_seed(self.seed * 7919 + index)
        angle, frequency, phase = torch.rand(3, generator=g) * torch.tensor([3.1416, 0.5, 6.2832])
        axis = torch.linspace(-1, 1, self.size)
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        wave = torch.sin((x * angle.cos() + y * angle.sin()) * (2 + frequency * self.size) + phase)
        a = wave[None]
        b = torch.stack([wave, wave.roll(self.size // 4, dims=1), -wave]) * 0.9
        if self.flip and torch.rand((), generator=g) < 0.5:
            a, b = a.flip(-1), b.flip(-1)
        return {"a": a.contiguous(), "b": b.contiguous(), "name": f"stripes_{index:05d}"}
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"size": 48, "seed": 3}])
def test_dataset_contract(p2p_host, params):
    check_dataset(p2p_host, "$name", **params)


def test_check_reports_the_split(p2p_host):
    adapter = p2p_host.build("dataset", {"name": "$name", "train_count": 3})
    report = adapter.check("train", deep=True)
    assert report.ok and report.pairs == 3
    assert not adapter.check("validation").ok
''',
    recipe={"data": {"name": "$name", "size": 32, "train_count": 4, "test_count": 2}},
)
