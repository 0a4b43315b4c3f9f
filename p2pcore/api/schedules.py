"""The learning-rate schedule contract."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from p2pcore.api.base import Field, Params


class ScheduleParams(Params):
    """Base of learning-rate schedules' parameters. `reads` names the figures logged at epoch ends that the
    schedule observes (``eval/psnr``), so `p2p validate` checks that the run logs them."""

    per: Literal["epoch", "step"] = Field(
        "epoch", description="epoch: the rate changes between epochs; step: after every step")

    def reads(self) -> frozenset[str]:
        return frozenset()


class Schedule:
    """A learning-rate multiplier over training; `epoch` is fractional when stepping per step.

    A schedule that reacts to metrics (plateau) implements `observe` and keeps its state in
    `state_dict`, which goes into checkpoints as JSON.
    """

    def factor(self, epoch: float, epochs: int) -> float:
        raise NotImplementedError

    def observe(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Called at the end of each epoch with the figures logged at it: the sample images' L1 and, at
        epochs that evaluate, the `[eval]` figures."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

