"""The training data: the adapter's training split checked and read in a seeded order per epoch (resumable
part-way, shared out over the processes of a data-parallel run), batches moved to the device and padded, and
the fixed batch the sample grids show."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from p2pcore.api.tasks import TaskSpec
from p2pcore.engine.build.data import Collate, EpochOrder, SeededItems
from p2pcore.engine.build.placement import SingleDevice
from p2pcore.engine.infer.protocols import pad_to_multiple
from p2pcore.errors import P2PError
from p2pcore.recipe import Recipe


def check_training_data(adapter: Any) -> None:
    """The adapter's own check of its training split (when it has one): problems are a one-screen error."""
    check = getattr(adapter, "check", None)
    if check is None:
        return
    report = check("train")
    if not report.ok:
        count = getattr(report, "problem_count", len(report.problems))
        shown = report.problems[:12]
        more = len(report.problems) - len(shown)
        raise P2PError(f"the training data has {count} problem(s)", key="data",
                       details=shown + ([f"... and {more} more lines"] if more else []),
                       hint="fix the files listed, or see `p2p data check RECIPE` for the full report")


class DataFeed:
    """Batches for the loop, from a checked, non-empty training split."""

    def __init__(self, adapter: Any, spec: TaskSpec, recipe: Recipe, placement: SingleDevice,
                 size_multiple: int) -> None:
        self.adapter, self.spec, self.placement = adapter, spec, placement
        self.seed = recipe.seed
        self.cfg = recipe.train
        self.size_multiple = size_multiple
        check_training_data(adapter)
        self.train_set = adapter.dataset("train", train=True)
        if len(self.train_set) == 0:
            raise P2PError("the training split is empty", key="data", hint="run `p2p data check RECIPE`")
        self.collate = Collate(spec.images)

    def batches_per_epoch(self) -> int:
        if self.placement.world_size > 1:  # whole global batches only
            return len(self.train_set) // self.cfg.batch_size
        return math.ceil(len(self.train_set) / self.cfg.batch_size)

    def order(self) -> EpochOrder:
        """The order of items, which the loop sets to each epoch (and to where a resumed run continues)."""
        return EpochOrder(len(self.train_set), self.seed, rank=self.placement.rank,
                          world=self.placement.world_size, batch=self.cfg.batch_size)

    def loader(self, order: EpochOrder) -> DataLoader:
        device = self.placement.device
        workers = self.cfg.num_workers
        if workers == "auto":
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            workers = min(8, cpus - 1) if device.type == "cuda" else (0 if cpus <= 4 else 2)
        return DataLoader(SeededItems(self.train_set, self.seed), batch_size=self.cfg.batch_size //
                          self.placement.world_size, sampler=order, collate_fn=self.collate, num_workers=workers,
                          pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                          # workers' base seed from a generator of its own: starting the loader must not move the
                          # training process's random state, or a resumed run would draw other dropout masks
                          generator=torch.Generator().manual_seed(self.seed),
                          prefetch_factor=4 if workers else None, drop_last=False)

    def to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Move a batch to the device; image keys whose sides are not multiples of what the
        generators need (native sizes, `preprocess = "none"`) are padded by reflection, all alike."""
        out = {}
        for k, v in batch.items():
            if k in self.spec.images and isinstance(v, torch.Tensor):
                out[k] = self.placement.to_device(pad_to_multiple(v, self.size_multiple)[0])
            elif isinstance(v, torch.Tensor):
                out[k] = v.to(self.placement.device, non_blocking=True)
            else:
                out[k] = v
        return out

    def sample_batch(self) -> dict | None:
        """A fixed batch of test images (train images if there is no test split) for grids."""
        for split in ("test", "train"):
            try:
                data = self.adapter.dataset(split, train=False)
            except P2PError:
                continue
            if len(data):
                items = [data[i] for i in range(min(self.cfg.sample_count, len(data)))]
                shapes = [tuple(item[k].shape for k in self.spec.images if k in item) for item in items]
                same_size = [item for item, shape in zip(items, shapes, strict=True) if shape == shapes[0]]
                return torch.utils.data.default_collate(same_size)
        return None
