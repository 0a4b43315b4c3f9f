"""When images may share a forward pass without changing each other's outputs.

Batching must not change what an image becomes. Two things break that: layers normalising with the
statistics of the batch they see (batch norm under the paper protocol, or batch norm that keeps no
running statistics), and random draws (dropout under the paper protocol, a random style): seeded
once per image, each image gets the same draws whatever shares its pass; drawn for a whole batch,
they would depend on the batch. Layers are inspected before any pass; random draws are detected on
the first pass, which therefore holds one image.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def batch_mixing_layers(nets: Iterable[nn.Module]) -> list[str]:
    """Why, in the networks' current mode, an image's output would depend on its batch: empty if it would not."""
    reasons = set()
    for net in nets:
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and (module.training
                                                                        or module.running_mean is None):
                reasons.add(f"batch statistics ({type(module).__name__})")
            elif isinstance(module, nn.modules.dropout._DropoutNd) and module.training and module.p > 0:
                reasons.add("dropout")
    return sorted(reasons)


def rng_state(device: torch.device) -> list[torch.Tensor]:
    """The random generators a pass on `device` may draw from, to tell whether it drew."""
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


def drew(before: list[torch.Tensor], device: torch.device) -> bool:
    """Whether any generator moved since `before`."""
    return any(not torch.equal(a, b) for a, b in zip(before, rng_state(device), strict=True))
