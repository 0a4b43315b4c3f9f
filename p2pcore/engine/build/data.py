"""Data order and augmentation that depend only on (seed, epoch, index), and batches that carry
user errors out of worker processes intact.

The sampler yields (epoch, index) keys; the dataset wrapper seeds the random generators from that
key before loading an item. Random crops and flips are then the same with or without worker
processes, and a resumed run sees exactly the batches the interrupted one would have seen.

A DataLoader re-raises a worker's exception with the worker's traceback as its message. So a
P2PError met while loading (a corrupt file, images of one batch with different sizes) travels as
plain data under ERROR_KEY instead, and `raise_carried` turns it back into the error it was.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate

from p2pcore.errors import P2PError

ERROR_KEY = "p2p_error"


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
        try:
            return self.dataset[index]
        except P2PError as error:
            return {ERROR_KEY: error.as_dict()}


class Collate:
    """default_collate, unless an item carries an error or the images of one key differ in size."""

    def __init__(self, image_keys: tuple[str, ...] = ("a", "b")) -> None:
        self.image_keys = image_keys

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        for item in items:
            if ERROR_KEY in item:
                return item
        for key in self.image_keys:
            sizes = {tuple(item[key].shape) for item in items if key in item}
            if len(sizes) > 1:
                names = ", ".join(str(item.get("name", "?")) for item in items)
                shown = " and ".join("x".join(map(str, size[-2:])) for size in sorted(sizes)[:2])
                error = P2PError(f"images of one batch differ in size ({shown}: {names})", key="train.batch_size",
                                 hint='crop to a fixed size (data.preprocess), or use train.batch_size = 1 with '
                                      'preprocess = "none"')
                return {ERROR_KEY: error.as_dict()}
        return default_collate(items)


def raise_carried(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch, or the error a worker carried in it."""
    if ERROR_KEY in batch:
        raise P2PError.from_dict(batch[ERROR_KEY])
    return batch


class EpochOrder(Sampler):
    """A shuffled order per epoch from (seed, epoch), optionally starting part-way through.

    Under data parallelism every process computes the same order and takes its shard of each
    global batch (`batch` items: `batch // world` consecutive ones per process), so the data a
    step sees, and where a resumed run continues, do not depend on the number of processes."""

    def __init__(self, length: int, seed: int, shuffle: bool = True, *, rank: int = 0, world: int = 1,
                 batch: int = 1) -> None:
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0
        self.rank, self.world, self.batch = rank, world, batch

    def set_position(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.length))
        g = torch.Generator().manual_seed(item_seed(self.seed, epoch, 0))
        return torch.randperm(self.length, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        remaining = self.order(self.epoch)[self.start:]
        if self.world > 1:  # whole global batches only, so every process steps equally often
            share = self.batch // self.world
            remaining = [index for first in range(0, len(remaining) - self.batch + 1, self.batch)
                         for index in remaining[first + self.rank * share:first + (self.rank + 1) * share]]
        for index in remaining:
            yield self.epoch, index

    def __len__(self) -> int:
        if self.world > 1:
            return (self.length - self.start) // self.batch * (self.batch // self.world)
        return self.length - self.start
