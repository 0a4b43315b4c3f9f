"""Contract checks of the network kinds: generators, discriminators and normalisation layers."""

from __future__ import annotations

from typing import Any

from p2pcore.plugins import Host
from p2pcore.testing.support import build, check_unit_range, resolve, shape

MIN_SIDE = 32


def _sides(multiple: int, size: int | None) -> tuple[int, int]:
    """A small H x W (W > H, so transposed axes show) whose sides are multiples of `multiple`."""
    if size is not None:
        assert size % multiple == 0, f"size {size} is not a multiple of the generator's size_multiple {multiple}"
        return size, size + multiple
    side = multiple * max(1, -(-MIN_SIDE // multiple))
    return side, side + multiple


def _gradient_problems(net: Any) -> list[str]:
    """Trainable parameters the last backward pass left without a finite gradient."""
    import torch

    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    broken = [n for n, p in net.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    problems = [f"no gradient reaches {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")] \
        if missing else []
    return problems + ([f"non-finite gradients in {', '.join(broken[:5])}"] if broken else [])


def check_generator(host: Host, name: str, *, in_channels: int = 3, out_channels: int = 3, size: int | None = None,
                    batch: int = 2, **params: Any) -> Any:
    """Build generator `name`, run a batch forward and backward, and check the generator contract:
    an nn.Module with an int `size_multiple`, output N x out_channels x H x W for inputs whose sides are
    multiples of it, values in [-1, 1] (it ends in Tanh), a gradient for every trainable parameter.
    Returns the network."""
    import torch
    from torch import nn

    net = build(host, "generator", name, params, in_channels=in_channels, out_channels=out_channels)
    what = f"generator {name!r}"
    assert isinstance(net, nn.Module), f"{what}: its builder returned {type(net).__name__}, not an nn.Module"
    multiple = getattr(net, "size_multiple", None)
    assert isinstance(multiple, int) and not isinstance(multiple, bool) and multiple >= 1, \
        f"{what}: `size_multiple` must be a positive int attribute (the sides it keeps), got {multiple!r}"
    h, w = _sides(multiple, size)
    torch.manual_seed(0)
    x = torch.rand(batch, in_channels, h, w) * 2 - 1
    net.train()
    y = net(x)
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == (batch, out_channels, h, w), \
        f"{what}: input {tuple(x.shape)} gave {shape(y)}; expected {(batch, out_channels, h, w)} " \
        f"(out_channels from the context, the input's size, as size_multiple {multiple} promises)"
    check_unit_range(y, f"{what}: its output")
    (y * torch.randn_like(y)).sum().backward()
    problems = _gradient_problems(net)
    assert not problems, f"{what}: after a backward pass, {'; '.join(problems)}"
    net.eval()
    with torch.no_grad():
        z = net(x[:1])
    assert tuple(z.shape) == (1, out_channels, h, w), f"{what}: in eval mode a single image gave {shape(z)}"
    return net


def _logit_maps(out: Any, what: str) -> list[Any]:
    """The maps of logits in a discriminator's output: the tensor, each tensor of a list, or the last
    feature of each scale's list (multi-scale with features)."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    assert isinstance(out, list | tuple) and out, \
        f"{what} returned {shape(out)}; return a map of logits, a list of them, or per scale a list of features"
    maps = [item[-1] if isinstance(item, list | tuple) and item else item for item in out]
    for item in maps:
        assert isinstance(item, torch.Tensor), f"{what} returned a list holding {shape(item)}"
    return maps


def check_discriminator(host: Host, name: str, *, in_channels: int = 6, size: int = 64, batch: int = 2,
                        **params: Any) -> Any:
    """Build discriminator `name` and check its contract: params with `conditional: bool`, attributes
    `conditional` (as in its params) and `receptive_field`, N x C x h x w maps of finite logits, and
    gradients that reach its input (the generator learns through them). Returns the network."""
    import torch
    from torch import nn

    what = f"discriminator {name!r}"
    resolved = resolve(host, "discriminator", name, params)
    assert isinstance(getattr(resolved, "conditional", None), bool), \
        f"{what}: its params need a `conditional: bool` field (tasks read it to choose what it sees)"
    net = build(host, "discriminator", name, params, in_channels=in_channels, out_channels=1)
    assert isinstance(net, nn.Module), f"{what}: its builder returned {type(net).__name__}, not an nn.Module"
    assert getattr(net, "conditional", None) == resolved.conditional, \
        f"{what}: attribute `conditional` is {getattr(net, 'conditional', None)!r}, its params say " \
        f"{resolved.conditional!r}"
    assert hasattr(net, "receptive_field"), f"{what}: set a `receptive_field` attribute (pixels each logit sees)"
    torch.manual_seed(0)
    x = (torch.rand(batch, in_channels, size, size) * 2 - 1).requires_grad_()
    net.train()
    maps = _logit_maps(net(x), what)
    for i, logits in enumerate(maps):
        assert logits.dim() == 4 and logits.shape[0] == batch and logits.numel() > 0, \
            f"{what}: logits {i} are {shape(logits)}; expected N x C x h x w with N = {batch} for a " \
            f"{size} px input"
        assert torch.isfinite(logits).all(), f"{what}: logits {i} have non-finite values"
    sum(m.mean() for m in maps).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, f"{what}: no gradient reaches its input"
    problems = _gradient_problems(net)
    assert not problems, f"{what}: after a backward pass, {'; '.join(problems)}"
    features = getattr(net, "forward_features", None)
    if features is not None:
        with torch.no_grad():
            found = features(x.detach())
        assert isinstance(found, list | tuple) and found and tuple(found[-1].shape) == tuple(maps[0].shape), \
            f"{what}: forward_features must return every intermediate map with the logits last " \
            f"(shape {tuple(maps[0].shape)}), got {shape(found[-1] if found else found)} last"
    return net


def check_norm(host: Host, name: str, *, channels: int = 8, **params: Any) -> Any:
    """Build norm `name` and check the NormFactory contract: callable with a channel count, a bool
    `conv_bias`, and layers that keep an N x C x H x W tensor's shape with finite values and gradients.
    Returns the factory."""
    import torch
    from torch import nn

    what = f"norm {name!r}"
    factory = build(host, "norm", name, params)
    assert callable(factory), f"{what}: its builder must return a callable factory(channels) -> nn.Module"
    assert isinstance(getattr(factory, "conv_bias", None), bool), \
        f"{what}: the factory needs a bool `conv_bias` (whether the conv before it keeps a bias)"
    for c in (channels, 3):
        layer = factory(c)
        assert isinstance(layer, nn.Module), f"{what}: factory({c}) returned {type(layer).__name__}, not a module"
        torch.manual_seed(0)
        x = torch.randn(2, c, 8, 8, requires_grad=True)
        layer.train()
        y = layer(x)
        assert isinstance(y, torch.Tensor) and y.shape == x.shape, \
            f"{what}: factory({c}) turned {tuple(x.shape)} into {shape(y)}"
        assert torch.isfinite(y).all(), f"{what}: factory({c}) gave non-finite values"
        (y * torch.randn_like(y)).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all(), f"{what}: no finite gradient reaches its input"
    return factory
