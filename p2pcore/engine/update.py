"""One side's update: weighted sum of its loss terms, backward, the optimisers' steps, and the
divergence guard that skips non-finite steps and stops a run that keeps producing them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from p2pcore.errors import P2PError

TAG = {"generator": "G", "discriminator": "D"}


@dataclass
class Progress:
    """Where training stands: the next epoch to run and how many of its batches are done."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    bad_steps: int = 0
    skipped_files: int = 0
    skipped_steps: int = 0


@dataclass
class SideUpdate:
    """The optimisers of one side's players and the gradient scaler they share."""

    side: str
    optimizers: dict[str, torch.optim.Optimizer]
    scaler: torch.amp.GradScaler
    patience: int
    checkpoint_dir: str
    params: list[torch.nn.Parameter] = field(init=False)

    def __post_init__(self) -> None:
        self.params = [p for opt in self.optimizers.values() for g in opt.param_groups for p in g["params"]]

    def __call__(self, parts: Mapping[str, torch.Tensor], weights: Mapping[str, float], progress: Progress,
                 logs: dict[str, torch.Tensor]) -> bool:
        """Apply the update; False when it was skipped as non-finite."""
        if not parts:
            return True
        total = sum(weights[k] * v.float() for k, v in parts.items())
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        for optimizer in self.optimizers.values():
            self.scaler.unscale_(optimizer)
        grads = [p.grad for p in self.params if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads) if grads else total.new_zeros(())
        if not bool(torch.isfinite(total) & torch.isfinite(grad_norm)) and not self.scaler.is_enabled():
            self._diverging(parts, grad_norm, progress)
            for optimizer in self.optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            return False
        for optimizer in self.optimizers.values():
            self.scaler.step(optimizer)
        self.scaler.update()
        tag = TAG.get(self.side, self.side)
        for k, v in parts.items():
            logs[f"{tag}/{k}"] = v.detach().float()
        logs[f"{tag}/total"] = total.detach()
        return True

    def _diverging(self, parts: Mapping[str, torch.Tensor], grad_norm: torch.Tensor, p: Progress) -> None:
        p.bad_steps += 1
        p.skipped_steps += 1
        bad = [k for k, v in parts.items() if not torch.isfinite(v).all()]
        what = f"loss term {', '.join(bad)}" if bad else f"{TAG.get(self.side, self.side)} gradient " \
                                                         f"(norm {float(grad_norm)})"
        if p.bad_steps >= self.patience:
            raise P2PError(f"training diverged: {what} of the {self.side} was not finite for {p.bad_steps} steps "
                           f"in a row (step {p.step})", key=f"loss.{bad[0]}" if bad else "optim.lr",
                           hint="lower optim.lr, use precision = \"fp32\", or check the data; " + (
                               f"the last good checkpoint is in {self.checkpoint_dir}"
                               if Path(self.checkpoint_dir, "latest.safetensors").exists()
                               else "it diverged before the first checkpoint was written"))
