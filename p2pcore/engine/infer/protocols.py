"""Running a generator on images of any size, under either test-time protocol.

Protocols: ``paper`` keeps dropout on and normalises with the statistics of the test batch, as
pix2pix does at test time; ``eval`` turns dropout off and uses batch-norm running statistics.
Neither changes the network: running statistics are left untouched under ``paper``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Protocol = Literal["paper", "eval"]


@contextlib.contextmanager
def protocol_mode(net: nn.Module, protocol: Protocol) -> Iterator[nn.Module]:
    """Put `net` in the protocol's mode for the duration; restore mode and statistics after."""
    was_training = net.training
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    tracked = [m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None for m in norms]
    try:
        if protocol == "eval":
            net.eval()
        else:
            net.train()
            for m in norms:
                m.momentum = 0.0  # batch statistics are used, running ones stay as they are
        yield net
    finally:
        net.train(was_training)
        for m, momentum, count in zip(norms, momenta, tracked, strict=True):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


@contextlib.contextmanager
def nets_in_protocol(nets: Mapping[str, nn.Module], protocol: Protocol) -> Iterator[None]:
    """Every network of `nets` in the protocol's mode for the duration (`protocol_mode` for each)."""
    with contextlib.ExitStack() as stack:
        for net in nets.values():
            stack.enter_context(protocol_mode(net, protocol))
        yield


def pad_to_multiple(image: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad N x C x H x W at the bottom and right so H and W are multiples; returns the original size."""
    h, w = image.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    return image, (h, w)


def translate_image(translate: callable, image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Translate one N x C x H x W batch at native size: pad to `multiple`, crop the result back."""
    padded, (h, w) = pad_to_multiple(image, multiple)
    return translate(padded)[..., :h, :w]
