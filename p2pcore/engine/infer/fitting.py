"""Whether an untiled pass of an image fits in memory, and the tile size that does when it does not.

A fully convolutional generator's activations grow with the pixels it is given. They are measured once
per translator on a probe: one real forward pass of a small image (the protocol's mode, its precision,
no gradients), with forward hooks following the module outputs alive at each moment, plus the columns a
transposed convolution unfolds while it runs (its input's pixels x its output channels x its kernel:
four times its output for the usual 4 x 4, stride-2 up-convolution); the peak, per probe pixel, scales
to an image (times a safety factor for other temporaries inside layers). Available memory
is the device's: on the CPU what the system reports available, bounded by an address-space limit
(``ulimit -v``) less what the process already maps; on CUDA the device's free memory. The environment
variable `P2P_MEMORY_BUDGET` (`p2pcore.recipe.memory`) caps it.

An image whose untiled pass would not fit is translated in tiles (`p2pcore.engine.infer.tiling`) of the
largest side whose pass takes at most half of what is available (1024 at most). Where an allocation fails
all the same (temporaries the probe does not see, an address-space limit counting reservations), the
pass is tried again in tiles of half the side, down to the smallest.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from p2pcore.engine.infer.tiling import Tiling, round_up
from p2pcore.errors import P2PError
from p2pcore.recipe.memory import BUDGET_VARIABLE, format_bytes, machine_memory, parse_bytes

try:
    import resource
except ImportError:  # pragma: no cover - Windows: no address-space limits to read
    resource = None

PROBE_SIDE = 128  # pixels (rounded up to the generator's multiple) of the probe image
PROBED_ABOVE = 4  # images of at most this many probes' pixels are translated untiled without a probe
SAFETY = 1.5  # temporaries inside layers (padding, concatenation, convolution workspaces)
LARGEST_TILE = 1024
ALLOCATION_FAILURES = ("can't allocate memory", "out of memory", "not enough memory", "failed to allocate")


def available_memory(device: torch.device) -> tuple[int, str]:
    """Bytes a pass may still use on `device`, and where the figure comes from."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        found, source = free, f"free on {device}"
    else:
        found, source = _system_available(), "available"
        limit = resource.getrlimit(resource.RLIMIT_AS)[0] if resource is not None else None
        if limit is not None and limit != resource.RLIM_INFINITY:
            headroom = max(0, limit - _mapped())
            if headroom < found:
                found, source = headroom, "left under the address-space limit (ulimit -v)"
    text = os.environ.get(BUDGET_VARIABLE)
    budget = parse_bytes(text) if text else None
    if budget is not None and budget < found:
        found, source = budget, f"allowed by {BUDGET_VARIABLE}={text}"
    return found, source


def _proc_bytes(path: str, field: str) -> int | None:
    """A `Field: N kB` line of a /proc file, in bytes (Linux; None where the file or the line is missing)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _system_available() -> int:
    found = _proc_bytes("/proc/meminfo", "MemAvailable")
    if found is not None:
        return found
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return machine_memory() or 0


def _mapped() -> int:
    """The address space this process maps already (Linux; 0 where unknown)."""
    return _proc_bytes("/proc/self/status", "VmSize") or 0


def _tensors(value: object) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _workspace(module: nn.Module, inputs: object) -> int:
    """Bytes a layer unfolds while it runs beyond its output: a transposed convolution's columns."""
    if not isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 0
    given = next(_tensors(inputs), None)
    if given is None:
        return 0
    pixels = given.numel() // max(1, given.shape[1]) if given.dim() > 2 else given.numel()
    return pixels * module.out_channels // module.groups * math.prod(module.kernel_size) * given.element_size()


def peak_activations(forward: Callable[[torch.Tensor], torch.Tensor], nets: Iterable[nn.Module],
                     probe: torch.Tensor) -> int:
    """The most bytes of module outputs (and the input) alive at once during `forward(probe)`."""
    live: dict[int, int] = {}
    peak = [0]

    def seen(tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key and key not in live:
            live[key] = storage.nbytes()
            weakref.finalize(tensor, live.pop, key, None)
        peak[0] = max(peak[0], sum(live.values()))

    def hook(module: nn.Module, inputs: object, output: object) -> None:
        for tensor in _tensors(output):
            seen(tensor)
        peak[0] = max(peak[0], sum(live.values()) + _workspace(module, inputs))

    handles = [module.register_forward_hook(hook) for net in nets for module in net.modules()]
    try:
        seen(probe)
        seen(forward(probe))
    finally:
        for handle in handles:
            handle.remove()
    return peak[0]


@dataclass
class Fitting:
    """Per-pixel activation bytes of a translator's pass, measured on first use, and the decision per image
    size: untiled, or the tiles that fit."""

    measure: Callable[[int], int]  # probe side -> peak bytes of one pass
    multiple: int
    device: torch.device
    per_pixel: float | None = None

    def bytes_per_pixel(self) -> float:
        if self.per_pixel is None:
            side = self.probe_side()
            try:
                self.per_pixel = self.measure(side) / (side * side) * SAFETY
            except Exception as error:  # noqa: BLE001 - a generator the probe cannot run: no estimate
                if allocation_failure(error):
                    raise
                self.per_pixel = 0.0
        return self.per_pixel

    def probe_side(self) -> int:
        return round_up(PROBE_SIDE, self.multiple)

    def worth_probing(self, height: int, width: int) -> bool:
        """Whether an image is large enough to ask: a smaller one costs little more than the probe itself."""
        return height * width > PROBED_ABOVE * self.probe_side() ** 2

    def need(self, height: int, width: int, images: int = 1) -> int:
        """Bytes an untiled pass of `images` images of height x width is expected to take."""
        padded = round_up(height, self.multiple) * round_up(width, self.multiple)
        return int(self.bytes_per_pixel() * padded * images)

    def smaller(self, height: int, width: int, tiling: Tiling | None) -> Tiling | None:
        """After a failed allocation: half the tile's side (the largest tile under the image's longer side
        when it was untiled), or None when that would be under the smallest tile."""
        longest = max(round_up(height, self.multiple), round_up(width, self.multiple))
        side = min(LARGEST_TILE, longest // 2) if tiling is None else tiling.size // 2
        side = side // self.multiple * self.multiple
        return Tiling.checked(side, None, self.multiple) if side >= 2 * self.multiple else None

    def tiles_for(self, height: int, width: int, images: int = 1) -> tuple[Tiling, str] | None:
        """None when an untiled pass fits (or the probe could not run); else the tiling that does and why, in
        words; a P2PError when not even the smallest tile fits."""
        need = self.need(height, width, images)
        free, source = available_memory(self.device)
        if need <= free or not self.bytes_per_pixel():
            return None
        room = free / 2 / self.bytes_per_pixel() / max(1, images)
        side = min(LARGEST_TILE, int(math.isqrt(max(0, int(room))) // self.multiple * self.multiple))
        smallest = 2 * self.multiple
        why = (f"an untiled pass of {width} x {height} would need about {format_bytes(need)}, "
               f"{format_bytes(free)} {source}")
        if side < smallest:
            raise P2PError(f"not enough memory to translate this image: {why}, and even {smallest} px tiles "
                           "would not fit", hint=f"free memory, or raise {BUDGET_VARIABLE} if it is set too low")
        return Tiling.checked(side, None, self.multiple), why


def allocation_failure(error: BaseException) -> bool:
    """Whether `error` is an allocation that failed (CPU or device), not another fault."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    return isinstance(error, RuntimeError) and any(text in str(error) for text in ALLOCATION_FAILURES)


def out_of_memory(height: int, width: int, *, tiled: int | None, option: str = "--tile") -> P2PError:
    """The one-screen error for an allocation that failed while translating a height x width image."""
    if tiled is not None:
        return P2PError(f"not enough memory to translate this {width} x {height} image in {tiled} px tiles",
                        key=option, hint=f"use smaller tiles, e.g. {option} {max(64, tiled // 2)}, or a smaller "
                                         "--batch-size")
    return P2PError(f"not enough memory to translate this {width} x {height} image in one pass", key=option,
                    hint=f"use {option} 512: overlapping tiles blended together, memory bounded by the tile")
