"""`p2p new plugin --kind loss`: a gradient-difference loss term."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="gradient difference: L1 between the horizontal and vertical differences of output and target",
    entry='''
from p2pcore.api import BuildContext, Field, LossParams, LossTerm, hookimpl


class $NameParams(LossParams):
    pred: str = Field("fake_b", description="tensor to compare")
    target: str = Field("real_b", description="tensor whose edges it should have")

    def reads(self) -> frozenset[str]:
        return frozenset({self.pred, self.target})


class $NameTerm(LossTerm):
    """Sharp edges where the target has them: only the generator side takes part."""

    def __init__(self, pred: str, target: str) -> None:
        self.pred = pred
        self.target = target

    def generator_loss(self, t: Any) -> Any:
        from $name.network import gradient_difference

        return gradient_difference(t[self.pred], t[self.target])


def build(params: $NameParams, ctx: BuildContext) -> $NameTerm:
    """Gradient difference: L1 between the horizontal and vertical differences of output and target."""
    return $NameTerm(params.pred, params.target)


@hookimpl
def p2p_register_losses(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    module='''
import torch


def gradient_difference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the images' finite differences along H and along W."""
    along_h = (pred.diff(dim=-2) - target.diff(dim=-2)).abs().mean()
    along_w = (pred.diff(dim=-1) - target.diff(dim=-1)).abs().mean()
    return along_h + along_w
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"pred": "fake_b", "target": "real_a"}])
def test_loss_contract(p2p_host, params):
    check_loss(p2p_host, "$name", **params)
''',
    recipe={"loss": {"$name": {"name": "$name", "weight": 10.0}}},
)
