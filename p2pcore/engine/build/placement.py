"""Where a run's modules live and how they are wrapped: the one object the loop is handed for how
training is spread over devices. `SingleDevice` is one process; `DataParallel` is one process per
device under PyTorch's launcher (torchrun or `p2p run --nproc N`), with DistributedDataParallel."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class SingleDevice:
    """Every module on one device (a GPU, or the CPU), optionally channels-last and compiled."""

    rank = 0
    world_size = 1
    is_main = True

    def __init__(self, device: torch.device, *, channels_last: bool = False, compile: bool | str = False) -> None:
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.compile = compile_mode(compile, device)

    def place(self, module: nn.Module) -> nn.Module:
        """Move a network (or a loss term that owns one) to the device."""
        return module.to(self.device, memory_format=self.memory_format)

    def wrap(self, nets: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        """The modules the forward passes run: compiled when asked, the same modules otherwise."""
        return {role: torch.compile(net, mode=self.compile) if self.compile else net for role, net in nets.items()}

    def wrap_term(self, term: nn.Module) -> None:
        """Compile the networks a loss term owns, in place, when compiling."""
        if self.compile:
            for child in term.children():
                child.compile(mode=self.compile)

    def to_device(self, image: torch.Tensor) -> torch.Tensor:
        return image.to(self.device, non_blocking=True, memory_format=self.memory_format)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a value over every process (here: the value)."""
        return value

    def any(self, flag: bool) -> bool:
        """Whether any process raised a flag (here: this one's)."""
        return flag

    def barrier(self) -> None:
        pass

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value` (picklable), in rank order."""
        return [value]


class DataParallel(SingleDevice):
    """One process per device; gradients are averaged by DistributedDataParallel, so a step on
    `world_size` shards of a batch equals one step on the whole batch (for per-sample norms).

    A network whose task holds part of it fixed for some epochs says so with ``trainable_varies = True``
    (pix2pixHD's `freeze_epochs`): its wrapper then looks for the parameters without gradients in each
    step and leaves them untouched, as one process does, instead of waiting for their gradients."""

    def __init__(self, device: torch.device, *, channels_last: bool = False, compile: bool | str = False) -> None:
        import torch.distributed as dist

        super().__init__(device, channels_last=channels_last, compile=compile)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.is_main = self.rank == 0

    def wrap(self, nets: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        wrapped = {role: DistributedDataParallel(net, device_ids=ids,
                                                 find_unused_parameters=bool(getattr(net, "trainable_varies", False)))
                   if any(p.requires_grad for p in net.parameters()) else net for role, net in nets.items()}
        return super().wrap(wrapped)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value)
        return value / self.world_size

    def any(self, flag: bool) -> bool:
        import torch.distributed as dist

        value = torch.tensor(float(flag), device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value)

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier(device_ids=[self.device.index]) if self.device.type == "cuda" else dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out


def launched_rank() -> int:
    """This process's rank when PyTorch's launcher started it, else 0."""
    return int(os.environ.get("RANK", "0"))


def compile_mode(compile: bool | str, device: torch.device) -> str | None:
    """The torch.compile mode to use, or None; an option the device cannot honour says why in one line."""
    if compile is False:
        return None
    mode = "default" if compile is True else compile
    if mode == "reduce-overhead" and device.type != "cuda":
        warnings.warn('train.compile = "reduce-overhead" captures CUDA graphs, which this device does not have; '
                      'compiling with mode "default"', stacklevel=2)
        return "default"
    return mode


def placement_for(device: torch.device, *, channels_last: bool, compile: bool | str) -> SingleDevice:
    """DataParallel when started by PyTorch's launcher with more than one process, else SingleDevice:
    gloo on CPUs, nccl on GPUs, each process on the GPU of its local rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return SingleDevice(device, channels_last=channels_last, compile=compile)
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DataParallel(device, channels_last=channels_last, compile=compile)
