"""Built-in learning-rate schedules. Each is a multiplier of the recipe's learning rates, a function
of the position in training (stateless, so resuming restores it exactly), except `plateau`, which
reacts to a logged metric and keeps its state in checkpoints."""

from __future__ import annotations

from typing import Any, Literal

from p2pcore.api import BuildContext, Field, ScheduleParams, hookimpl

P2P_API = ">=1,<2"  # the plugin API versions this plugin supports: p2pcore.api.API_VERSION


class ConstantParams(ScheduleParams):
    pass


class ConstantThenLinearParams(ScheduleParams):
    decay_epochs: int = Field(0, ge=0, description="epochs at the end over which the rate decays linearly to "
                                                  "zero (CycleGAN: 100 of 200; 0: constant throughout)")


class StepParams(ScheduleParams):
    step_epochs: float = Field(50, gt=0, description="epochs between reductions")
    gamma: float = Field(0.1, gt=0, le=1, description="multiplier at each reduction")


class CosineParams(ScheduleParams):
    floor: float = Field(0.0, ge=0, le=1, description="the final multiplier; the rate never climbs back")
    warmup_epochs: float = Field(0, ge=0, description="epochs of linear warm-up from zero first")


class PlateauParams(ScheduleParams):
    per: Literal["epoch"] = Field("epoch", description="plateau reacts to epoch-end metrics")
    metric: str = Field("eval/l1", description="a figure logged at epoch ends, as metrics.jsonl names it: an [eval] "
                                               "figure (eval/l1, eval/psnr) or the sample images' samples/l1")
    mode: Literal["min", "max"] = Field("min", description="min: lower is better")
    patience: int = Field(10, ge=0, description="epochs without improvement before the rate drops")
    gamma: float = Field(0.1, gt=0, lt=1, description="multiplier at each drop")
    threshold: float = Field(1e-4, ge=0, description="relative improvement that counts")
    min_factor: float = Field(0.0, ge=0, le=1, description="the multiplier never goes below this")

    def reads(self) -> frozenset[str]:
        return frozenset({self.metric})


def build_constant(params: ConstantParams, ctx: BuildContext) -> Any:
    """The same rate throughout."""
    from p2p_schedules.policies import Constant

    return Constant()


def build_constant_then_linear(params: ConstantThenLinearParams, ctx: BuildContext) -> Any:
    """Constant, then linear decay to zero over the last `decay_epochs` (pix2pix, CycleGAN: 100 + 100)."""
    from p2p_schedules.policies import ConstantThenLinear

    return ConstantThenLinear(params.decay_epochs)


def build_step(params: StepParams, ctx: BuildContext) -> Any:
    """Multiply by `gamma` every `step_epochs`."""
    from p2p_schedules.policies import Step

    return Step(params.step_epochs, params.gamma)


def build_cosine(params: CosineParams, ctx: BuildContext) -> Any:
    """Half a cosine from 1 to `floor` over training, after an optional linear warm-up."""
    from p2p_schedules.policies import Cosine

    return Cosine(params.floor, params.warmup_epochs)


def build_plateau(params: PlateauParams, ctx: BuildContext) -> Any:
    """Multiply by `gamma` when a validation metric stops improving for `patience` epochs."""
    from p2p_schedules.policies import Plateau

    return Plateau(params)


@hookimpl
def p2p_register_schedules(register: Any) -> None:
    register("constant", build_constant, params=ConstantParams)
    register("constant_then_linear", build_constant_then_linear, params=ConstantThenLinearParams,
             aliases=("linear",))
    register("step", build_step, params=StepParams)
    register("cosine", build_cosine, params=CosineParams)
    register("plateau", build_plateau, params=PlateauParams)
