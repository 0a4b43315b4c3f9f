"""Batch normalisation whose statistics span every process of a data-parallel run.

PyTorch's own SyncBatchNorm runs only on GPUs; this one reduces the per-channel sums and sums of
squares with an autograd-aware all-reduce, so it works with gloo on CPUs and nccl on GPUs alike,
and in one process it is exactly BatchNorm2d. It is a BatchNorm2d subclass, so it is initialised
and put in test-time protocols like batch norm.
"""

from __future__ import annotations

import torch
from torch import nn


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class SyncBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _distributed()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        local = x.float()
        count = torch.full((1,), local.numel() / c, device=x.device)
        stats = all_reduce(torch.cat([local.sum((0, 2, 3)), (local * local).sum((0, 2, 3)), count]))
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * total / (total - 1).clamp_min(1), alpha=m)
        y = (local - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)
