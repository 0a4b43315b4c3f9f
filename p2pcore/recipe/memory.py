"""The memory a recipe asks for, estimated before anything is allocated, and the budget it must fit.

A recipe value is a few bytes of text, and one such value (a width of a million filters, a hundred
billion training scenes) can ask for terabytes: the estimate refuses it with a one-screen error naming
the key, instead of an allocation failure after minutes or a machine driven into swap.

The budget is this machine's physical memory, or what the environment variable `P2P_MEMORY_BUDGET`
says (bytes, or with a unit: ``64G``, ``1.5T``; ``0`` or ``off`` turns the check off) for a recipe
checked on one machine and trained on a larger one. What is estimated here needs no torch: the data's
(the epoch's shuffled order of a declared item count, the batches in flight of a declared item size).
The networks' (parameters, gradients and optimiser state) are counted by building them on torch's meta
device (`p2pcore.engine.build.memory`). Activations are not estimated: the figure is a lower bound, so
what is refused certainly would not fit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from p2pcore.errors import P2PError
from p2pcore.recipe.sections import Recipe

BUDGET_VARIABLE = "P2P_MEMORY_BUDGET"
FALLBACK_BUDGET = 64 * 10**9  # where the machine's memory cannot be read (stated in the docs)
ORDER_BYTES = 56  # per training item: a 64-bit index in the shuffled tensor, then a list slot and an int
FLOAT_BYTES = 4
BATCHES_IN_FLIGHT = 2  # the step's batch and the next one being loaded
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}


@dataclass(frozen=True)
class Budget:
    """The bytes a recipe may ask for, and where that figure comes from (said in the error)."""

    bytes: int | None  # None: no check
    source: str

    def fits(self, total: int) -> bool:
        """Whether `total` bytes may be asked for (always, where there is no budget)."""
        return self.bytes is None or total <= self.bytes


@dataclass(frozen=True)
class Need:
    """Memory one part of a recipe asks for: `key` is the recipe key that drives it (set to `value`),
    `what` the part in words and `hint` how to ask for less."""

    bytes: int
    key: str
    value: Any
    what: str
    hint: str


def format_bytes(count: float) -> str:
    """`count` bytes in decimal units, as a person reads them: 800 GB, 128 TB."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if count < 1000 or unit == "EB":
            return f"{count:.0f} {unit}" if unit == "B" or count >= 10 else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def parse_bytes(text: str) -> int | None:
    """`P2P_MEMORY_BUDGET`'s value in bytes: a number with an optional unit (K, M, G, T, P; a trailing B
    and binary spellings such as GiB accepted); None for ``0`` or ``off`` (no check)."""
    spelled = text.strip().upper().replace(" ", "")
    if spelled in ("0", "OFF", "NONE"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTP]?)(I?B)?", spelled)
    if not match or (match.group(3) == "IB" and not match.group(2)):
        raise P2PError(f"{BUDGET_VARIABLE}={text!r} is not an amount of memory", key=BUDGET_VARIABLE,
                       hint="bytes or a number with a unit, e.g. 64G or 1.5T (0 or off: no check)")
    number, unit, binary = float(match.group(1)), match.group(2), match.group(3) == "IB"
    scale = 1024 ** (" KMGTP".index(unit)) if binary and unit else _UNITS[unit]
    return int(number * scale)


def machine_memory() -> int | None:
    """This machine's physical memory in bytes, where the system says it."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_budget(environ: Mapping[str, str] | None = None) -> Budget:
    """`P2P_MEMORY_BUDGET` when set, else this machine's physical memory (64 GB where it cannot be read)."""
    environ = os.environ if environ is None else environ
    text = environ.get(BUDGET_VARIABLE)
    if text:
        return Budget(parse_bytes(text), f"{BUDGET_VARIABLE}={text}")
    found = machine_memory()
    if found is None:
        return Budget(FALLBACK_BUDGET, "the default, as this machine's memory cannot be read")
    return Budget(found, "this machine's memory")


def data_needs(recipe: Recipe) -> list[Need]:
    """What the recipe's data holds in memory, from what its parameters declare (nothing is read): the
    epoch's shuffled order of the training items, and the batches in flight of items of a fixed size."""
    params = recipe.data.params
    needs = []
    count = params.item_count("train")
    if count is not None:
        needs.append(Need(count.count * ORDER_BYTES, f"data.{count.key}", count.count,
                          f"the shuffled order of {count.count} training items ({ORDER_BYTES} bytes each)",
                          f"lower data.{count.key}"))
    size, channels = params.item_size(), params.image_channels()
    if size is not None and channels:
        item = size.side * size.side * sum(channels.values()) * FLOAT_BYTES
        batch = recipe.train.batch_size
        needs.append(Need(batch * item * BATCHES_IN_FLIGHT, "train.batch_size", batch,
                          f"{BATCHES_IN_FLIGHT} batches in flight of {batch} items of {size.side} x {size.side} "
                          f"pixels, {sum(channels.values())} channels", "lower train.batch_size"))
    return needs


def check_needs(needs: Iterable[Need], budget: Budget | None = None, *, command: str = "p2p run") -> None:
    """Refuse needs that together pass the budget, naming the largest one's key (a one-screen error)."""
    needs = sorted(needs, key=lambda n: n.bytes, reverse=True)
    budget = memory_budget() if budget is None else budget
    total = sum(n.bytes for n in needs)
    if budget.fits(total):
        return
    top = needs[0]
    raise P2PError(f"{top.key} = {top.value} needs about {format_bytes(top.bytes)} of memory for {top.what}, "
                   f"past the budget of {format_bytes(budget.bytes)} ({budget.source})", key=top.key,
                   details=[f"{format_bytes(n.bytes):>8}  {n.key} = {n.value}: {n.what}" for n in needs],
                   hint=f"{top.hint}; on a machine with more memory, raise the budget: "
                        f"{BUDGET_VARIABLE}=2T {command} ...")
