"""One side's update (weighted sum of its loss terms, backward, the optimisers' steps) and the
divergence guard, both without host-device synchronisation inside the step.

Non-finite steps are found on the device: a flag that fused Adam reads to skip its update (as it
does for a gradient scaler). The guard keeps its counts on the device too and is read only when a
streak could have reached `divergence_patience`, at logging and before checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from p2pcore.checkpoint.run_state import Counters
from p2pcore.errors import P2PError
from p2pcore.records import term_key, total_key

TAG = {"generator": "G", "discriminator": "D"}


def make_adam(params: list[torch.nn.Parameter], *, lr: float, betas: tuple[float, float],
              weight_decay: float) -> torch.optim.Adam:
    """Fused Adam where PyTorch has it for these parameters (CPU and CUDA floats), else foreach."""
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)


class SideUpdate:
    """The optimisers of one side's players and the gradient scaler they share; `sync`, where processes
    share a run, makes their gradients agree after the backward pass."""

    def __init__(self, side: str, optimizers: dict[str, torch.optim.Optimizer], scaler: torch.amp.GradScaler,
                 sync: Callable[[], None] | None = None) -> None:
        self.side = side
        self.sync = sync
        self.tag = TAG.get(side, side)
        self.optimizers = optimizers
        self.scaler = scaler
        self.params = [p for opt in optimizers.values() for g in opt.param_groups for p in g["params"]]
        self.fused = all(opt.defaults.get("fused") for opt in optimizers.values())

    def __call__(self, parts: Mapping[str, torch.Tensor], weights: Mapping[str, float],
                 logs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Apply the update unless it is not finite; returns the device flag (1.0: skipped), None when
        the side had nothing to do."""
        if not parts:
            return None
        total = sum(weights[k] * v.float() for k, v in parts.items())
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.sync is not None:
            self.sync()
        bad = ~torch.isfinite(total.detach())
        if self.scaler.is_enabled():  # fp16: the scaler skips overflowing steps and lowers its scale itself
            for optimizer in self.optimizers.values():
                self.scaler.step(optimizer)
            self.scaler.update()
        else:
            grads = [p.grad for p in self.params if p.grad is not None]
            if grads:
                bad = bad | ~torch.isfinite(torch.nn.utils.get_total_norm(grads))
            found = bad.float()
            for optimizer in self.optimizers.values():
                if self.fused:
                    optimizer.found_inf = found  # fused Adam skips the update on the device
                    optimizer.step()
                elif not bool(found):  # no fused kernel here: one synchronisation
                    optimizer.step()
        for k, v in parts.items():
            logs[term_key(self.tag, k)] = v.detach().float()
        logs[total_key(self.tag)] = total.detach()
        return bad.float()


class DivergenceGuard:
    """Counts non-finite steps on the device and stops a run after `patience` in a row.

    The streak can grow by one per step, so it is read only when it could have reached `patience`:
    a run that never diverges synchronises for it once every `patience` steps."""

    def __init__(self, patience: int, device: torch.device, latest: Path, progress: Counters) -> None:
        self.patience = patience
        self.latest = latest  # the run's latest checkpoint, named when the run stops
        self.streak = torch.tensor(float(progress.bad_steps), device=device)
        self.skipped = torch.tensor(float(progress.skipped_steps), device=device)
        self.terms: dict[str, torch.Tensor] = {}
        self.next_read = progress.step + max(1, patience - progress.bad_steps)

    def record(self, bad: torch.Tensor, logs: Mapping[str, torch.Tensor]) -> None:
        self.streak = (self.streak + 1) * bad
        self.skipped = self.skipped + bad
        for name, value in logs.items():
            flag = (~torch.isfinite(value)).float()
            self.terms[name] = flag if name not in self.terms else torch.maximum(self.terms[name], flag)

    def sync(self, progress: Counters, *, force: bool = False) -> None:
        """Copy the counts into `progress` when due (or forced); stop the run when the streak is long."""
        if not force and progress.step < self.next_read:
            return
        streak, skipped = int(self.streak), int(self.skipped)
        progress.bad_steps, progress.skipped_steps = streak, skipped
        self.next_read = progress.step + max(1, self.patience - streak)
        if streak >= self.patience:
            bad = [name for name, flag in self.terms.items() if float(flag) and not name.endswith("/total")]
            what = f"loss term {', '.join(bad)}" if bad else "a gradient"
            term = bad[0].split("/", 1)[1] if bad else None
            raise P2PError(f"training diverged: {what} was not finite for {streak} steps in a row (step "
                           f"{progress.step})", key=f"loss.{term}" if term else "optim.lr",
                           hint="lower optim.lr, use precision = \"fp32\", or check the data; " + (
                               f"the last good checkpoint is in {self.latest.parent}" if self.latest.exists()
                               else "it diverged before the first checkpoint was written"))
        if streak == 0:
            self.terms.clear()
