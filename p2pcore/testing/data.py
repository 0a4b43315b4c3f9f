"""Contract check of dataset adapters."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError
from p2pcore.formats import DEFAULT_INPUTS, DEFAULT_OUTPUTS, declared
from p2pcore.plugins import Host
from p2pcore.testing.support import build, check_unit_range, shape

SPLITS = (("train", True), ("test", False))


def _declared(adapter: Any, what: str) -> dict[str, int]:
    """Image keys and their channel counts, as the adapter declares them."""
    counts = {"a": getattr(adapter, "a_channels", None), "b": getattr(adapter, "b_channels", None)}
    extra = getattr(adapter, "channels", {}) or {}
    assert isinstance(extra, dict), f"{what}: `channels` must map further image keys to channel counts"
    counts.update(extra)
    for key, count in counts.items():
        assert isinstance(count, int) and not isinstance(count, bool) and count >= 1, \
            f"{what}: the channel count of image key {key!r} must be a positive int, got {count!r}"
    return counts


def check_dataset(host: Host, name: str, *, keys: Iterable[str] | None = None, items: int = 2,
                  **params: Any) -> Any:
    """Build dataset `name` from `params` (without touching the disk) and check its adapter contract:
    `dataset("train", train=True)` and `dataset("test", train=False)` are non-empty and their items hold
    the image `keys` (default a, b and those of `channels`) as float C x H x W tensors with the declared
    channel counts, a and b in [-1, 1]; `input_suffixes`/`output_suffixes`, where it declares them, give
    suffixes; `write_output` writes an image (in a format it declares writing and reading, .png by default)
    that `read_input` reads back with the same shape. Returns the adapter."""
    import torch

    what = f"dataset {name!r}"
    adapter = build(host, "dataset", name, params)
    counts = _declared(adapter, what)
    wanted = tuple(keys) if keys is not None else tuple(counts)
    for key in wanted:
        assert key in counts, f"{what}: image key {key!r} is neither a nor b nor in its `channels`"
    for split, train in SPLITS:
        data = adapter.dataset(split, train=train)
        assert len(data) > 0, f"{what}: dataset({split!r}, train={train}) is empty"
        for index in range(min(items, len(data))):
            item = data[index]
            where = f"{what}: item {index} of {split!r}"
            assert isinstance(item, dict), f"{where} is {type(item).__name__}, not a dict of named values"
            for key in wanted:
                assert key in item, f"{where} lacks image key {key!r} (it has {', '.join(map(str, item))})"
                image = item[key]
                assert isinstance(image, torch.Tensor) and image.dim() == 3 and image.is_floating_point(), \
                    f"{where}: {key!r} is {shape(image)}; images are float C x H x W tensors"
                assert image.shape[0] == counts[key], \
                    f"{where}: {key!r} has {image.shape[0]} channels, the adapter declares {counts[key]}"
                if key in ("a", "b"):
                    check_unit_range(image, f"{where}: {key!r}")
                else:
                    assert torch.isfinite(image).all(), f"{where}: {key!r} has non-finite values"
    _check_round_trip(adapter, adapter.dataset("test", train=False)[0], wanted, what)
    return adapter


def _check_round_trip(adapter: Any, item: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    """What `p2p translate` does with an adapter: write an output image, and read an input."""
    for side in (k for k in ("b", "a") if k in keys):
        suffix = _round_trip_suffix(adapter, side, what)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{side}{suffix}"
            adapter.write_output(item[side], path, side=side)
            assert path.exists(), f"{what}: write_output(image, {path.name!r}, side={side!r}) wrote no file"
            back = adapter.read_input(path, side=side)
            assert tuple(back.shape) == tuple(item[side].shape), \
                f"{what}: side {side!r} written by write_output and read by read_input is {shape(back)}, " \
                f"not {tuple(item[side].shape)}"


def _round_trip_suffix(adapter: Any, side: str, what: str) -> str:
    """The first format the adapter declares writing for `side` that it reads too: what `p2p translate`
    reads back. .png for an adapter that declares nothing."""
    try:
        writes = declared(adapter, "output_suffixes", side, DEFAULT_OUTPUTS)
        reads = declared(adapter, "input_suffixes", side, DEFAULT_INPUTS)
    except P2PError as exc:
        raise AssertionError(f"{what}: {exc.message}") from None
    both = [s for s in writes if s in reads]
    assert both, f"{what}: for image key {side!r} it writes {', '.join(writes)} and reads {', '.join(reads)}, " \
                 "none of which it both writes and reads"
    return both[0]
