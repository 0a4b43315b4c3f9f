"""The feature taps of the built-in generators (p2pcore.api's feature-tap contract): which intermediate maps
each offers, in execution order, and how they are computed.

The names are plain Python, so the entry module's `facts` lists them without torch (``p2p show generator``,
a task checking layer indices at ``p2p validate``); the networks compute the maps with `TapChain`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from p2pcore.api import Tap, check_taps


def unet_tap_names(depth: int) -> tuple[str, ...]:
    """The input, then each encoder layer's output (down1 .. down<depth>, the last one the bottleneck)."""
    return ("input", *(f"down{i}" for i in range(1, depth + 1)))


def resnet_tap_names(n_downsample: int, n_blocks: int) -> tuple[str, ...]:
    """The input, the first convolution (head), each downsampling, each residual block: CUT's encoder layers."""
    return ("input", "head", *(f"down{i}" for i in range(1, n_downsample + 1)),
            *(f"res{i}" for i in range(1, n_blocks + 1)))


def local_tap_names(n_blocks_local: int) -> tuple[str, ...]:
    """The finest enhancer's encoder: the input, its head and downsampling, then its residual blocks (which
    read the sum of its own features and the coarser network's)."""
    return ("input", "head", "down1", *(f"res{i}" for i in range(1, n_blocks_local + 1)))


Stage = Callable[[Any], Any]


class TapChain:
    """For generators whose tapped maps come one after another: each stage takes the previous map and gives
    the next; stage 0 is the input itself. A network provides `tap_stages()`."""

    def tap_stages(self) -> list[tuple[Tap, Stage]]:
        raise NotImplementedError

    def taps(self) -> tuple[Tap, ...]:
        return tuple(tap for tap, _ in self.tap_stages())

    def feature_maps(self, x: Any, layers: Sequence[int]) -> list[Any]:
        """The maps at these tap indices, in the order asked, computing no stage past the last one needed."""
        stages = self.tap_stages()
        check_taps(layers, [tap.name for tap, _ in stages], key="layers", generator=type(self).__name__)
        wanted = set(layers)
        found: dict[int, Any] = {}
        for index, (_, stage) in enumerate(stages[: max(layers) + 1]):
            x = stage(x)
            if index in wanted:
                found[index] = x
        return [found[index] for index in layers]


def identity(x: Any) -> Any:
    return x
