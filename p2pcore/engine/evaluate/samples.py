"""Sample grids and the figure computed on them at epoch ends: every network of the run in the
test-time protocol, the task's visuals as columns, and the L1 of each direction that has a target
(`samples/l1`; the `[eval]` metrics over a whole split are in `evaluate.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from p2pcore.api.tasks import Task, TaskSpec
from p2pcore.engine.build.device import autocast
from p2pcore.engine.evaluate.grids import save_grid
from p2pcore.engine.infer.protocols import nets_in_protocol
from p2pcore.recipe import sample_figures


@torch.no_grad()
def sample(task: Task, spec: TaskSpec, nets: Mapping[str, nn.Module], batch: Mapping[str, Any], path: Path | None, *,
           seed: int, device: torch.device, precision: str, display: Any = None) -> dict[str, float]:
    """Write the grid of the task's visuals (one row per image) under the paper's protocol (unless
    `path` is None); return the L1 of each direction that has a target."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        with nets_in_protocol(nets, "paper"), autocast(device, precision):
            t = task.step_tensors(nets, batch)
            columns = [(t[name].float(), key) for name, key in spec.visuals.items()]
            figures = {key: float((t[spec.directions[name].tensor].float()
                                   - t[spec.directions[name].target].float()).abs().mean())
                       for name, key in sample_figures(spec).items()}
    if path is not None:
        save_grid([display(image, key) if display else image for image, key in columns], path)
    return figures
