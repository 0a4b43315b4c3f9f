"""Contract check of evaluation metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from p2pcore.api.metrics import Comparison, MetricParams
from p2pcore.plugins import Host
from p2pcore.testing.support import build, resolve


def _batch(n: int, channels: int, size: int, paired: bool, seed: int) -> Comparison:
    import torch

    g = torch.Generator().manual_seed(seed)
    real = torch.rand(n, channels, size, size, generator=g) * 2 - 1
    output = (real + 0.3 * torch.randn(real.shape, generator=g)).clamp(-1, 1)
    source = torch.rand(n, channels, size, size, generator=g) * 2 - 1
    return Comparison("a2b", source, output, real, real if paired else None)


def _joined(first: Comparison, second: Comparison) -> Comparison:
    import torch

    def cat(x: Any, y: Any) -> Any:
        return None if x is None else torch.cat([x, y])

    return Comparison(first.direction, cat(first.input, second.input), cat(first.output, second.output),
                      cat(first.real, second.real), cat(first.target, second.target))


def _figures(metric: Any, batches: list[Comparison], names: Mapping[str, bool], what: str) -> dict[str, float]:
    metric.reset()
    for batch in batches:
        metric.update(batch)
    found = metric.compute()
    assert isinstance(found, Mapping), f"{what}: compute() returned {type(found).__name__}, not a dict of figures"
    assert set(found) == set(names), \
        f"{what}: compute() returned figures {sorted(found)}, its params' figures() names {sorted(names)}"
    for key, value in found.items():
        assert isinstance(value, float), \
            f"{what}: figure {key!r} is {type(value).__name__}; return float(...), not a tensor or an int"
        assert math.isfinite(value), f"{what}: figure {key!r} is {value}"
    return dict(found)


def check_metric(host: Host, name: str, *, size: int = 32, channels: int = 3, batch: int = 2,
                 split_invariant: bool = True, tolerance: float = 1e-4, **params: Any) -> Any:
    """Build metric `name` and check its contract on random images: reset, update with two batches and
    compute return exactly the figures its params' `figures()` names, as finite floats; reset empties
    its state. With `split_invariant` (a metric that is a mean over images or pixels, or pools
    histograms), two batches must give the figures of one batch holding both. Returns the metric."""
    import torch

    what = f"metric {name!r}"
    resolved = resolve(host, "metric", name, params)
    assert isinstance(resolved, MetricParams), f"{what}: its params must subclass p2pcore.api.MetricParams"
    names = resolved.figures()
    assert isinstance(names, Mapping) and names, f"{what}: figures() must map figure names to higher-is-better"
    paired = resolved.paired()
    metric = build(host, "metric", name, params)
    if isinstance(metric, torch.nn.Module):
        metric.eval()
    first, second = (_batch(batch, channels, size, paired, seed) for seed in (1, 2))
    with torch.no_grad():
        apart = _figures(metric, [first, second], names, what)
        together = _figures(metric, [_joined(first, second)], names, what)
        again = _figures(metric, [first, second], names, what)
    for key in names:
        assert math.isclose(apart[key], again[key], rel_tol=tolerance, abs_tol=tolerance), \
            f"{what}: figure {key!r} was {apart[key]} and then {again[key]} for the same images: reset() must " \
            "empty what update() accumulated"
        if split_invariant:
            assert math.isclose(apart[key], together[key], rel_tol=tolerance, abs_tol=tolerance), \
                f"{what}: figure {key!r} is {apart[key]} over two batches but {together[key]} over one batch " \
                "of the same images; accumulate sums and counts, not per-batch means"
    return metric
