"""The `colorize_probe` task's step (torch): colorize's, plus the probe on the generator's features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from p2pcore.api import P2PError, TaskContext, Tensors

from .colorize import ColorizeTask


class ColorizeProbeTask(ColorizeTask):
    def __init__(self, luma: str, layer: int) -> None:
        super().__init__(luma)
        self.layer = layer
        self.scale = 1

    def build_own_networks(self, ctx: TaskContext, nets: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        """Called when training, after the roles are built: the probe fits the tap the generator offers."""
        generator = nets["generator"]
        if not hasattr(generator, "feature_maps"):
            raise P2PError(f"{type(generator).__name__} offers no feature taps", key="model.generator")
        tap = generator.taps()[self.layer]
        self.scale = tap.scale
        return {"probe": nn.Conv2d(tap.channels, 1, 1)}

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        generator, probe = nets["generator"], nets.get("probe")

        def probed(t: Tensors) -> torch.Tensor:
            (features,) = generator.feature_maps(t["gray"], [self.layer])
            return probe(features)

        def target(t: Tensors) -> torch.Tensor:
            return F.avg_pool2d(t["gray"], self.scale) if self.scale > 1 else t["gray"]

        return super().step_tensors(nets, batch).extend({"probe": probed, "probe_target": target})
