"""The order of a participant's trials: which image pair, and on which side the real image is.

Practice trials come first. Images are drawn without repetition until every pair has been shown,
and within each phase the real image is on the left in half of the trials, so neither a side
preference nor a remembered image moves the fooling rate.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Side = Literal["left", "right"]
SIDES: tuple[Side, Side] = ("left", "right")


@dataclass(frozen=True)
class Trial:
    index: int
    practice: bool
    name: str
    real_side: Side


def participant_seed(seed: int, participant: int) -> str:
    """Each participant gets their own order, reproducible from the study's seed."""
    return f"{seed}:{participant}"


def _draw(names: Sequence[str], count: int, rng: random.Random) -> list[str]:
    """`count` names, each whole pass over the names shuffled anew, so repeats start only when all were used."""
    drawn: list[str] = []
    while len(drawn) < count:
        batch = list(names)
        rng.shuffle(batch)
        if drawn and len(batch) > 1 and batch[0] == drawn[-1]:
            batch[0], batch[-1] = batch[-1], batch[0]  # no image twice in a row across passes
        drawn.extend(batch)
    return drawn[:count]


def _sides(count: int, rng: random.Random) -> list[Side]:
    """Half left, half right (the odd one out at random), in random order."""
    sides: list[Side] = ["left"] * (count // 2) + ["right"] * (count // 2)
    if count % 2:
        sides.append(rng.choice(SIDES))
    rng.shuffle(sides)
    return sides


def make_plan(names: Sequence[str], *, trials: int, practice: int, seed: int | str) -> list[Trial]:
    """Practice trials then trials; the same names and seed give the same plan."""
    if not names:
        raise ValueError("a plan needs at least one image pair")
    rng = random.Random(seed)
    drawn = _draw(sorted(names), practice + trials, rng)
    sides = _sides(practice, rng) + _sides(trials, rng)
    return [Trial(i, i < practice, name, side) for i, (name, side) in enumerate(zip(drawn, sides, strict=True))]
