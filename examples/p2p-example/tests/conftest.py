"""A tiny pairs listing on disk, for the `csv_pairs` adapter and the example recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

SIZE = 36  # not a multiple of anything: the recipes crop to 32


def write_pairs(root: Path, *, train: int = 4, test: int = 2, size: int = SIZE) -> Path:
    """Random colour image pairs under root/a and root/b, listed in root/pairs.csv; returns the listing."""
    import torch

    from p2pcore.api import write_image

    lines = ["a,b,split"]
    g = torch.Generator().manual_seed(0)
    for index in range(train + test):
        for side in ("a", "b"):
            (root / side).mkdir(parents=True, exist_ok=True)
            write_image(torch.rand(3, size, size, generator=g) * 2 - 1, root / side / f"{index}.png")
        lines.append(f"a/{index}.png,b/{index}.png,{'train' if index < train else 'test'}")
    listing = root / "pairs.csv"
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return listing


@pytest.fixture
def pairs_csv(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "pairs")
