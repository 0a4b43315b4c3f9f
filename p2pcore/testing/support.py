"""What the contract checks share: building a component under test and describing tensors in failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from p2pcore.errors import P2PError
from p2pcore.plugins import Host


def spec_of(name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, **params}


def build(host: Host, kind: str, name: str, params: dict[str, Any], **channels: Any) -> Any:
    """Build a component as a recipe would; a refusal fails the check with p2p's own message."""
    try:
        return host.build(kind, spec_of(name, params), **channels)
    except P2PError as exc:
        raise AssertionError(f"{kind} {name!r} did not build from {spec_of(name, params)}: {exc.message}"
                             + (f" ({exc.hint})" if exc.hint else "")) from exc


def build_with_methods(host: Host, kind: str, name: str, params: dict[str, Any], methods: Sequence[str],
                       missing: str) -> Any:
    """Build a component and check that it has each of `methods`; `missing`, given the method's name (``{}``),
    says what one without it must do (``"it has no {}(); subclass p2pcore.api.Schedule"``)."""
    component = build(host, kind, name, params)
    for method in methods:
        assert callable(getattr(component, method, None)), f"{kind} {name!r}: {missing.format(method)}"
    return component


def resolve(host: Host, kind: str, name: str, params: dict[str, Any]) -> Any:
    """The validated parameters of a component, as its builder receives them."""
    try:
        return host.resolve(kind, spec_of(name, params)).params
    except P2PError as exc:
        raise AssertionError(f"{kind} {name!r} refused the parameters {params}: {exc.message}") from exc


def resolve_reading(host: Host, kind: str, name: str, params: dict[str, Any], base: type,
                    reads_what: str) -> tuple[Any, frozenset[str]]:
    """Resolve a component whose params derive from `base` and name what they read (`reads()`: a loss term's
    step tensors, a schedule's figures): its params and that set, each checked."""
    what = f"{kind} {name!r}"
    resolved = resolve(host, kind, name, params)
    assert isinstance(resolved, base), f"{what}: its params must subclass p2pcore.api.{base.__name__}"
    reads = resolved.reads()
    assert isinstance(reads, frozenset | set) and all(isinstance(n, str) and n for n in reads), \
        f"{what}: reads() must return a set of {reads_what} names, got {reads!r}"
    return resolved, frozenset(reads)


def shape(value: Any) -> str:
    """A tensor's shape, or what the value is instead, for failure messages."""
    found = getattr(value, "shape", None)
    return f"a tensor of shape {tuple(found)}" if found is not None else f"{type(value).__name__} {value!r:.60}"


def check_finite_scalar(value: Any, what: str) -> None:
    """A loss: a 0-dimensional finite tensor through which gradients flow."""
    import torch

    assert isinstance(value, torch.Tensor), f"{what} returned {shape(value)}, not a tensor"
    assert value.dim() == 0, f"{what} returned {shape(value)}; reduce it to a scalar (.mean())"
    assert torch.isfinite(value), f"{what} returned {value.item()}, which is not finite"
    assert value.requires_grad, f"{what} returned a tensor without a gradient: it must be computed from its " \
                                "inputs with torch operations (no .item(), .detach() or numpy)"


def check_unit_range(value: Any, what: str, *, tolerance: float = 1e-5) -> None:
    import torch

    assert torch.isfinite(value).all(), f"{what} has non-finite values"
    low, high = float(value.detach().min()), float(value.detach().max())
    assert -1 - tolerance <= low and high <= 1 + tolerance, \
        f"{what} spans [{low:.4g}, {high:.4g}], outside [-1, 1]"
