"""Data order and augmentation that depend only on (seed, epoch, index).

The sampler yields (epoch, index) keys; the dataset wrapper seeds the random generators from that
key before loading an item. Random crops and flips are then the same with or without worker
processes, and a resumed run sees exactly the batches the interrupted one would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def item_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 100_003 + index) % (2**31 - 1)


class SeededItems(Dataset):
    """Wraps a dataset so item (epoch, index) is loaded with generators seeded from that key."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        s = item_seed(self.seed, epoch, index)
        torch.manual_seed(s)
        random.seed(s)
        np.random.seed(s)
        return self.dataset[index]


class EpochOrder(Sampler):
    """A shuffled order per epoch from (seed, epoch), optionally starting part-way through."""

    def __init__(self, length: int, seed: int, shuffle: bool = True) -> None:
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.length))
        g = torch.Generator().manual_seed(item_seed(self.seed, epoch, 0))
        return torch.randperm(self.length, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.order(self.epoch)[self.start:]:
            yield self.epoch, index

    def __len__(self) -> int:
        return self.length - self.start
