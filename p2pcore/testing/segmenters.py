"""Contract check of semantic segmenters (the networks the FCN-score runs on generated photos)."""

from __future__ import annotations

from typing import Any

from p2pcore.plugins import Host
from p2pcore.testing.support import build, shape


def _check_labels(net: Any, what: str) -> int:
    """`classes`, `palette` and `ignore_index` as the Segmenter protocol describes them; the class count."""
    classes = getattr(net, "classes", None)
    assert isinstance(classes, tuple) and classes and all(isinstance(c, str) and c for c in classes), \
        f"{what}: `classes` must be a non-empty tuple of class names, got {classes!r}"
    palette = getattr(net, "palette", None)
    assert isinstance(palette, tuple) and len(palette) == len(classes), \
        f"{what}: `palette` must be a tuple of one RGB colour per class ({len(classes)}), got {palette!r:.80}"
    for name, colour in zip(classes, palette, strict=True):
        assert isinstance(colour, tuple) and len(colour) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in colour), \
            f"{what}: the colour of class {name!r} is {colour!r}; give three ints in 0-255"
    ignore = getattr(net, "ignore_index", None)
    assert isinstance(ignore, int) and not isinstance(ignore, bool) and -1 <= ignore < len(classes), \
        f"{what}: `ignore_index` must be -1 (none) or a class index below {len(classes)}, got {ignore!r}"
    return len(classes)


def check_segmenter(host: Host, name: str, *, size: int = 32, batch: int = 2, **params: Any) -> Any:
    """Build segmenter `name` (its weights file named in `params`) and check the Segmenter contract: an
    nn.Module with `classes` (a tuple of names), `palette` (an RGB colour of ints 0-255 per class) and
    `ignore_index` (-1 or a class index); in eval mode, N x 3 x H x W photos in [-1, 1] give N x K x H x W
    finite class scores, K = len(classes), for a square and a wider size. Returns the network."""
    import torch
    from torch import nn

    what = f"segmenter {name!r}"
    net = build(host, "segmenter", name, params)
    assert isinstance(net, nn.Module), f"{what}: its builder returned {type(net).__name__}, not an nn.Module"
    count = _check_labels(net, what)
    net.eval()
    torch.manual_seed(0)
    for h, w in ((size, size), (size, 2 * size)):
        x = torch.rand(batch, 3, h, w) * 2 - 1
        with torch.no_grad():
            scores = net(x)
        assert isinstance(scores, torch.Tensor) and tuple(scores.shape) == (batch, count, h, w), \
            f"{what}: photos {tuple(x.shape)} gave {shape(scores)}; expected {(batch, count, h, w)} (a score per " \
            "class and pixel, at the photo's size)"
        assert torch.isfinite(scores).all(), f"{what}: the class scores of {tuple(x.shape)} have non-finite values"
    return net
