"""Activation checkpointing: a generator's segments keep only their inputs during the forward pass and
recompute their activations in the backward pass, trading about one more forward pass for the memory of
high-resolution training (pix2pixHD at 2048 x 1024).

Recomputation is exact: dropout draws the same masks (the random state is replayed) and batch norm, which
normalises with the same batch statistics again, does not update its running statistics a second time.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


@contextlib.contextmanager
def running_statistics_frozen(module: nn.Module) -> Iterator[None]:
    """Batch norm inside `module` normalises as usual but leaves its running statistics as they are."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    try:
        for m in norms:
            m.momentum = 0.0
        yield
    finally:
        for m, (momentum, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


def _checkpointed_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """The class's forward, under checkpointing while training with gradients. Bound to its module as a
    method, so a copy of the network (the weight average) runs its own weights."""
    forward = type(self).forward.__get__(self)
    if not (torch.is_grad_enabled() and self.training):
        return forward(*args, **kwargs)
    return checkpoint(forward, *args, use_reentrant=False, preserve_rng_state=True,
                      context_fn=lambda: (contextlib.nullcontext(), running_statistics_frozen(self)), **kwargs)


def checkpoint_activations(net: nn.Module) -> int:
    """Recompute the activations of the segments `net.checkpoint_segments()` names; returns how many (0 when
    the network names none)."""
    segments = getattr(net, "checkpoint_segments", None)
    if segments is None:
        return 0
    count = 0
    for segment in segments():
        segment.forward = types.MethodType(_checkpointed_forward, segment)
        count += 1
    return count


def kept_for_backward(net: nn.Module, x: torch.Tensor) -> tuple[Any, int]:
    """`net(x)`, and the bytes of the tensors autograd keeps for its backward pass: what checkpointing saves,
    measurable on any device, the meta one included."""
    kept = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal kept
        kept += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(x)
    return out, kept
