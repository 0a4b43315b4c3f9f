"""`p2p new plugin --kind schedule`: exponential decay after a linear warm-up."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="exponential decay of the learning rates after a linear warm-up",
    entry='''
from p2pcore.api import BuildContext, Field, ScheduleParams, hookimpl


class $NameParams(ScheduleParams):  # `per` (epoch or step) comes with ScheduleParams
    warmup_epochs: float = Field(1.0, ge=0, description="epochs of linear warm-up from a small rate first")
    gamma: float = Field(0.95, gt=0, le=1, description="multiplier per epoch after the warm-up")


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """Exponential decay of the learning rates after a linear warm-up."""
    from $name.policy import WarmupExponential

    return WarmupExponential(params.warmup_epochs, params.gamma)


@hookimpl
def p2p_register_schedules(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    module='''
from p2pcore.api import Schedule


class WarmupExponential(Schedule):
    """A function of the position in training alone: nothing to keep in checkpoints, so a resumed run
    continues exactly."""

    def __init__(self, warmup_epochs: float, gamma: float) -> None:
        self.warmup = warmup_epochs
        self.gamma = gamma

    def factor(self, epoch: float, epochs: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        return self.gamma ** (epoch - self.warmup)
''',
    module_name="policy",
    checks='''
@pytest.mark.parametrize("params", [{}, {"per": "step", "warmup_epochs": 0.5, "gamma": 0.5}])
def test_schedule_contract(p2p_host, params):
    check_schedule(p2p_host, "$name", **params)


def test_schedule_warms_up_then_decays(p2p_host):
    schedule = check_schedule(p2p_host, "$name", warmup_epochs=2, gamma=0.5)
    assert [schedule.factor(e, 10) for e in range(5)] == [1 / 3, 2 / 3, 1.0, 0.5, 0.25]
''',
    recipe={"schedule": {"name": "$name", "warmup_epochs": 0.5}},
)
