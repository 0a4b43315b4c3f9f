"""The schedules' arithmetic: plain Python, no torch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from p2pcore.api import Schedule


class Constant(Schedule):
    def factor(self, epoch: float, epochs: int) -> float:
        return 1.0


class ConstantThenLinear(Schedule):
    """In epoch e (0-based) of E: 1 - max(0, e + 1 - (E - D)) / (D + 1), as the CycleGAN code has it,
    so the last epoch still trains at 1/(D + 1) of the rate."""

    def __init__(self, decay_epochs: int) -> None:
        self.decay_epochs = decay_epochs

    def factor(self, epoch: float, epochs: int) -> float:
        if not self.decay_epochs:
            return 1.0
        constant = epochs - self.decay_epochs
        return max(0.0, 1.0 - max(0.0, epoch + 1 - constant) / (self.decay_epochs + 1))


class Step(Schedule):
    def __init__(self, step_epochs: float, gamma: float) -> None:
        self.step_epochs = step_epochs
        self.gamma = gamma

    def factor(self, epoch: float, epochs: int) -> float:
        return self.gamma ** math.floor(epoch / self.step_epochs + 1e-9)


class Cosine(Schedule):
    def __init__(self, floor: float, warmup_epochs: float) -> None:
        self.floor = floor
        self.warmup = warmup_epochs

    def factor(self, epoch: float, epochs: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        span = max(epochs - self.warmup, 1e-9)
        progress = min(1.0, (epoch - self.warmup) / span)
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


class Plateau(Schedule):
    def __init__(self, params: Any) -> None:
        self.params = params
        self.current = 1.0
        self.best: float | None = None
        self.bad_epochs = 0

    def factor(self, epoch: float, epochs: int) -> float:
        return self.current

    def observe(self, epoch: int, metrics: Mapping[str, float]) -> None:
        p = self.params
        if p.metric not in metrics:  # an epoch that does not evaluate (`[eval] every`)
            return
        value = metrics[p.metric]
        sign = 1.0 if p.mode == "min" else -1.0
        if self.best is None or sign * (value - self.best) < -p.threshold * abs(self.best):
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > p.patience:
            self.current = max(p.min_factor, self.current * p.gamma)
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"current": self.current, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        self.current = float(state["current"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
