"""`p2p new plugin --kind metric`: root mean squared error."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="root mean squared error between output and target over the split, in [-1, 1] units",
    entry='''
from p2pcore.api import BuildContext, MetricParams, hookimpl


class $NameParams(MetricParams):
    def figures(self) -> dict[str, bool]:
        return {"": False}  # one figure, lower is better


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """Root mean squared error between output and target over the split, in [-1, 1] units."""
    from $name.network import RootMeanSquaredError

    return RootMeanSquaredError()


@hookimpl
def p2p_register_metrics(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    module='''
import torch

from p2pcore.api import Comparison, Metric


class RootMeanSquaredError(Metric):
    """Sums stay tensors on the device during the split; one transfer in compute."""

    def reset(self) -> None:
        self.squared: torch.Tensor | None = None
        self.count = 0

    def update(self, batch: Comparison) -> None:
        error = (batch.output.float() - batch.target.float()).pow(2).sum()
        self.squared = error if self.squared is None else self.squared + error
        self.count += batch.output.numel()

    def compute(self) -> dict[str, float]:
        if self.squared is None:
            return {"": float("nan")}
        return {"": float((self.squared / self.count).sqrt())}
''',
    checks='''
def test_metric_contract(p2p_host):
    check_metric(p2p_host, "$name")
''',
    recipe={"eval": {"metrics": ["$name"]}},
)
