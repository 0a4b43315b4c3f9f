"""Where a run's modules live and how their training is spread over devices: the one object the loop is
handed for it. `SingleDevice` is one process; `DataParallel` is one process per device under PyTorch's
launcher (torchrun or `p2p run --nproc N`), averaging each side's gradients across processes itself.

No network is ever wrapped for data parallelism: a task always receives the modules it built, so their own
methods (a generator's ``feature_maps``) stay reachable, and its own networks train like its roles."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
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

    def gradient_sync(self, nets: Sequence[nn.Module]) -> Callable[[], None] | None:
        """What makes the gradients of `nets` agree across processes before their optimisers step (here:
        nothing to do)."""
        return None

    def sync_buffers(self) -> None:
        """Give every process the main process's buffers (batch-norm statistics); here: nothing to do."""

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

    def close(self) -> None:
        """After a run that ended well: nothing to release on one device."""

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value` (picklable), in rank order."""
        return [value]


class DataParallel(SingleDevice):
    """One process per device, each on its shard of the global batch. The networks start from the main
    process's weights and buffers (broadcast when wrapped), each step starts from its buffers (as
    DistributedDataParallel's ``broadcast_buffers``), and each side's gradients are averaged over the
    processes before its optimisers step, so a step on `world_size` shards of a batch equals one step on
    the whole batch (for per-sample norms).

    A network whose parameters may get a gradient in one process and none in another says so with
    ``trainable_varies = True`` (pix2pixHD's `freeze_epochs` holds G1 for some epochs): its parameters are
    then averaged wherever any process has a gradient (none counting as zero, as DistributedDataParallel's
    ``find_unused_parameters``), at the cost of one more small exchange per step."""

    def __init__(self, device: torch.device, *, channels_last: bool = False, compile: bool | str = False) -> None:
        import torch.distributed as dist

        super().__init__(device, channels_last=channels_last, compile=compile)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.is_main = self.rank == 0
        self.buffers: list[torch.Tensor] = []

    def wrap(self, nets: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        """The main process's weights and buffers in every process; then compiled as one process does."""
        with torch.no_grad():
            for net in nets.values():
                _broadcast([*net.parameters(), *net.buffers()])
        known = {id(b) for b in self.buffers}
        self.buffers += [b for net in nets.values() for b in net.buffers() if id(b) not in known]
        return super().wrap(nets)

    def gradient_sync(self, nets: Sequence[nn.Module]) -> Callable[[], None] | None:
        steady = [p for net in nets if not getattr(net, "trainable_varies", False) for p in net.parameters()]
        varying = [p for net in nets if getattr(net, "trainable_varies", False) for p in net.parameters()]
        return GradientAverage(steady, varying, self.world_size, self.device)

    @torch.no_grad()
    def sync_buffers(self) -> None:
        _broadcast(self.buffers)

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

    def close(self) -> None:
        """Every process done, the process group is taken down before the interpreter exits: the
        communication threads left running at exit can abort a process that finished its work."""
        import torch.distributed as dist

        if dist.is_initialized():
            self.barrier()
            dist.destroy_process_group()

    def gather(self, value: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out


class GradientAverage:
    """Averages the gradients of a side's parameters over the processes, in one exchange per dtype.

    A parameter without a gradient here has none in any process (the same computation ran on each); among
    `varying` ones, the processes first agree on which have a gradient anywhere."""

    def __init__(self, steady: list[nn.Parameter], varying: list[nn.Parameter], world_size: int,
                 device: torch.device) -> None:
        self.steady, self.varying, self.world_size, self.device = steady, varying, world_size, device

    @torch.no_grad()
    def __call__(self) -> None:
        import torch.distributed as dist

        params = [p for p in self.steady if p.grad is not None]
        if self.varying:
            here = torch.tensor([p.grad is not None for p in self.varying], dtype=torch.float32, device=self.device)
            dist.all_reduce(here, op=dist.ReduceOp.MAX)
            for p, anywhere in zip(self.varying, here.tolist(), strict=True):
                if anywhere and p.grad is None:
                    p.grad = torch.zeros_like(p)
            params += [p for p in self.varying if p.grad is not None]
        for grads in _by_dtype([p.grad for p in params]):
            flat = torch._utils._flatten_dense_tensors(grads)
            dist.all_reduce(flat)
            flat.div_(self.world_size)
            for grad, mean in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads), strict=True):
                grad.copy_(mean)


def _by_dtype(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    return list(groups.values())


def _broadcast(tensors: list[torch.Tensor]) -> None:
    """The main process's values of `tensors` in every process, in one exchange per dtype."""
    import torch.distributed as dist

    for group in _by_dtype(tensors):
        flat = torch._utils._flatten_dense_tensors(group)
        dist.broadcast(flat, 0)
        for t, value in zip(group, torch._utils._unflatten_dense_tensors(flat, group), strict=True):
            t.copy_(value)


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
