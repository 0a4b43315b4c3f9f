"""Log records: the keys a run's figures are logged under (metrics.jsonl), named and parsed in one place.

A record's figures are keyed:

- ``<side>/<term>`` and ``<side>/total``: a side's loss terms and their weighted sum (``G/l1``, ``D/total``);
- ``lr``: the learning rate; ``skipped_files``, ``skipped_steps``: what training skipped;
- ``eval[/<direction>]/<metric>[/<part>]``: the ``[eval]`` figures at epoch ends (``eval/psnr``,
  ``eval/fcn_score/pixel_accuracy``);
- ``samples[/<direction>]/l1``: the L1 on the sample images at epoch ends.

The direction appears only when the task offers more than one. The recipe checks (``[eval] best``, what a
schedule reads), the engine that logs and the report that plots all name keys through this module.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from p2pcore.api.base import ComponentRef
from p2pcore.api.tasks import TaskSpec

# -- figure keys ----------------------------------------------------------------------------------------

EVAL = "eval"
"""The group of the ``[eval]`` figures."""
SAMPLES = "samples"
"""The group of the sample images' L1."""
LR = "lr"
"""The learning rate's key."""
TOTAL = "total"
"""The term name of a side's weighted sum of terms."""
SAMPLE_FIGURE = "l1"
"""What is logged of the sample images."""
SKIPPED = ("skipped_files", "skipped_steps")
"""The counters of what training skipped."""
SEPARATOR = "/"

DIRECTION = re.compile(r"[a-z]+2[a-z]+")
"""What a direction's name looks like (``a2b``), to tell ``eval/<direction>/<metric>`` from
``eval/<metric>/<part>`` in a log read without its recipe."""


def _join(*parts: str) -> str:
    return SEPARATOR.join(part for part in parts if part)


def eval_key(metric: str, part: str = "", direction: str = "") -> str:
    """``eval[/<direction>]/<metric>[/<part>]``; `direction` only when the task offers more than one."""
    return _join(EVAL, direction, metric, part)


def sample_key(direction: str = "") -> str:
    """``samples[/<direction>]/l1``; `direction` only when the task offers more than one."""
    return _join(SAMPLES, direction, SAMPLE_FIGURE)


def term_key(side: str, term: str) -> str:
    """``<side>/<term>``: one loss term of a side (``G/l1``)."""
    return _join(side, term)


def total_key(side: str) -> str:
    """``<side>/total``: the weighted sum of a side's terms."""
    return term_key(side, TOTAL)


class KeyParts(NamedTuple):
    """A logged key taken apart: `group` is ``eval``, ``samples``, ``lr``, a skip counter or a side's tag;
    `name` is the metric, the sample figure or the loss term; `part` a metric's part; `direction` the
    direction when the key names one."""

    group: str
    name: str = ""
    part: str = ""
    direction: str = ""


def parse_key(key: str, directions: Collection[str] = ()) -> KeyParts:
    """The parts of a logged key. In ``eval/<x>/<y>``, `x` is a direction when it is one of `directions`
    (the task's, or those `log_directions` finds in a log); otherwise a metric with its part `y`."""
    parts = key.split(SEPARATOR)
    head, rest = parts[0], parts[1:]
    if head == EVAL and rest:
        direction = rest[0] if len(rest) > 1 and rest[0] in directions else ""
        if direction:
            rest = rest[1:]
        return KeyParts(EVAL, rest[0], SEPARATOR.join(rest[1:]), direction)
    if head == SAMPLES and rest:
        return KeyParts(SAMPLES, rest[-1], "", rest[0] if len(rest) == 2 else "")
    return KeyParts(head, SEPARATOR.join(rest))


def log_directions(keys: Iterable[str]) -> set[str]:
    """Direction names in a log's keys: those of ``samples/<direction>/l1``, and any ``a2b``-like name
    after ``eval/`` in a key of three parts or more."""
    found: set[str] = set()
    for key in keys:
        parts = key.split(SEPARATOR)
        sampled = parts[0] == SAMPLES and len(parts) == 3
        if sampled or (parts[0] == EVAL and len(parts) >= 3 and DIRECTION.fullmatch(parts[1])):
            found.add(parts[1])
    return found


def is_term(key: str) -> bool:
    """A loss term of a side (``G/l1``), not its total nor an eval, sample or learning-rate figure."""
    group, name, _, _ = parse_key(key)
    return bool(name) and group not in (EVAL, SAMPLES, LR) and name.split(SEPARATOR)[-1] != TOTAL


# -- the figures a recipe logs --------------------------------------------------------------------------

class _EvalTable(Protocol):
    @property
    def metrics(self) -> Sequence[ComponentRef]: ...

    @property
    def directions(self) -> Sequence[str]: ...


class _Evaluating(Protocol):
    """What `eval_figures` reads of a recipe: its `[eval]` table (resolved metrics)."""

    @property
    def eval(self) -> _EvalTable: ...


@dataclass(frozen=True)
class Figure:
    """One number an evaluation logs: its direction, its metric's label and part, and which way is better."""

    direction: str
    metric: str
    part: str
    higher_is_better: bool


def eval_figures(recipe: _Evaluating, spec: TaskSpec) -> dict[str, Figure]:
    """The keys `[eval]` logs in metrics.jsonl: ``eval/<metric>[/<part>]``, with the direction after ``eval/``
    when the task offers more than one. Paired metrics are computed on the directions that have a target."""
    multi = len(spec.directions) > 1
    out: dict[str, Figure] = {}
    for direction in recipe.eval.directions or list(spec.directions):
        for ref in recipe.eval.metrics:
            if ref.params.paired() and not spec.directions[direction].target:
                continue
            for part, higher in ref.params.figures().items():
                key = eval_key(ref.name, part, direction if multi else "")
                out[key] = Figure(direction, ref.name, part, bool(higher))
    return out


def sample_figures(spec: TaskSpec) -> dict[str, str]:
    """Direction -> the key of the L1 on the sample images logged at each epoch's end: `samples/l1`, or
    `samples/<direction>/l1` when the task offers more than one direction."""
    multi = len(spec.directions) > 1
    return {name: sample_key(name if multi else "") for name, d in spec.directions.items() if d.target}


# -- records: the metrics.jsonl writer and reader --------------------------------------------------------
# (the one writer of log records and its reader, used by the engine and the report, go here)
