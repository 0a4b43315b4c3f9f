"""Contract check of loss terms."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from p2pcore.api.losses import LossParams, Tensors
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.testing.support import build_with_methods, check_finite_scalar, resolve_reading

SIDES = ("generator_loss", "discriminator_loss")


def _image(shape: tuple[int, ...]) -> Any:
    import torch

    return (torch.rand(shape) * 2 - 1).requires_grad_()


def check_loss(host: Host, name: str, *, tensors: Mapping[str, Any] | Callable[[str], Any] | None = None,
               shape: tuple[int, ...] = (2, 3, 32, 32), **params: Any) -> Any:
    """Build loss term `name` and check its contract: params subclassing LossParams whose `reads()`
    names the step tensors it reads; `generator_loss` and/or `discriminator_loss` on a Tensors holding
    those names return finite scalars with gradients (or None for a side it has no part in).

    Each read tensor is a random N x C x H x W image in [-1, 1] requiring grad, unless `tensors` gives it
    (a mapping by name, or a function of the name), e.g. a discriminator's list of feature maps.
    Returns the term."""
    import torch

    what = f"loss {name!r}"
    _, reads = resolve_reading(host, "loss", name, params, LossParams, "tensor")
    term = build_with_methods(host, "loss", name, params, SIDES,
                              "its term has no {}; subclass p2pcore.api.LossTerm (which returns None for both)")
    torch.manual_seed(0)
    given = tensors if callable(tensors) else (lambda n: tensors[n]) if tensors is not None else None
    values = {n: given(n) if given is not None and (callable(tensors) or n in tensors) else _image(shape)
              for n in sorted(reads)}
    if isinstance(term, torch.nn.Module):
        term.train()
    found = []
    for side in SIDES:
        try:
            loss = getattr(term, side)(Tensors(values=values))
        except P2PError as exc:
            raise AssertionError(f"{what}: {side} reads a tensor its reads() does not name: {exc.message}") from exc
        if loss is None:
            continue
        found.append(side)
        check_finite_scalar(loss, f"{what}: {side}")
        leaves = [v for v in _tensors_in(values.values()) if v.requires_grad]
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), \
            f"{what}: {side} does not depend on the tensors it reads ({', '.join(sorted(reads))})"
    assert found, f"{what}: both generator_loss and discriminator_loss returned None; a term takes part in a side"
    return term


def _tensors_in(values: Any) -> list[Any]:
    import torch

    out = []
    for value in values:
        if isinstance(value, torch.Tensor):
            out.append(value)
        elif isinstance(value, list | tuple):
            out.extend(_tensors_in(value))
    return out
