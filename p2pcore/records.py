"""Log records: the keys a run's figures are logged under (metrics.jsonl), named and parsed in one place.

A record's figures are keyed:

- ``<side>/<term>`` and ``<side>/total``: a side's loss terms and their weighted sum (``G/l1``, ``D/total``);
- ``lr``: the learning rate; ``skipped_files``, ``skipped_steps``: what training skipped;
- ``eval[/<direction>]/<metric>[/<part>]``: the ``[eval]`` figures at epoch ends (``eval/psnr``,
  ``eval/fcn_score/pixel_accuracy``);
- ``samples[/<direction>]/l1``: the L1 on the sample images at epoch ends.

The direction appears only when the task offers more than one. The recipe checks (``[eval] best``, what a
schedule reads), the engine that logs and the report that plots all name keys through this module.

It also writes and reads the log: :func:`record` assembles every line, :class:`RecordLog` (the callback through
which a run logs) appends them, :func:`read_records` reads them back for the report.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from p2pcore.api.base import ComponentRef
from p2pcore.api.callbacks import Callback, RunInfo
from p2pcore.api.tasks import TaskSpec
from p2pcore.atomicfile import write_bytes_atomically, write_error
from p2pcore.errors import P2PError

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
# One JSON object per line: a logged step's figures, an epoch end's sample figures, an evaluation's figures,
# each with the step, the epoch (fractional at a logged step) and the time. Lines are appended across resumes;
# a reader meets a last line being written, or one cut short by a crash, and skips it.

STEP, EPOCH, TIME = "step", "epoch", "time"
NOT_FIGURES = frozenset({STEP, EPOCH, TIME})
DECIMALS = 6
"""Figures are logged rounded to this many decimals (the learning rate and the counters as they are)."""
NUMBER_TYPES = (int, float)


def logged(figures: Mapping[str, float | None]) -> dict[str, float | None]:
    """Figures as the log keeps them: rounded to :data:`DECIMALS`; None (not finite) stays None."""
    return {k: None if v is None else round(v, DECIMALS) for k, v in figures.items()}


def step_figures(losses: Mapping[str, float], *, rates: Mapping[str, float], skipped_files: int,
                 skipped_steps: int) -> dict[str, float | None]:
    """The figures of a logged step: each side's terms averaged since the last logged step, the learning
    rates and the skip counters. `rates` are each player's, the first player's first: it is ``lr``, and a
    player learning at another rate (a discriminator at twice the generator's) adds ``lr/<player>``."""
    (_, first), *others = rates.items()
    own = {f"{LR}{SEPARATOR}{player}": rate for player, rate in others if rate != first}
    return {**logged(losses), LR: first, **own, SKIPPED[0]: skipped_files, SKIPPED[1]: skipped_steps}


def record(step: int, epoch: float, figures: Mapping[str, float | None], *,
           now: float | None = None) -> dict[str, float | None]:
    """One line of the log: where the run stands, when, and the figures."""
    return {STEP: step, EPOCH: epoch, TIME: round(time.time() if now is None else now, 3), **figures}


KEPT = "the lines logged so far and the checkpoints are intact; continue with `p2p run --resume`"


class RecordFile:
    """The log file, appended to one whole line at a time; `forget_after` before appending, when resuming."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def open(self) -> None:
        try:
            self._file = self.path.open("a", buffering=1)
        except OSError as exc:
            raise write_error(exc, self.path, what="the metrics log", hint=KEPT) from None

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:
                raise write_error(exc, self.path, what="the metrics log", hint=KEPT) from None

    def write(self, line: Mapping[str, Any]) -> None:
        try:
            self._file.write(json.dumps(line) + "\n")
        except OSError as exc:
            raise write_error(exc, self.path, what="the metrics log", hint=KEPT) from None

    def forget_after(self, step: int) -> None:
        """Drop lines of steps a resumed run will do again, so no step is logged twice (written atomically:
        on a failure the log stays as it was)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise P2PError(f"cannot read the metrics log: {exc.strerror or exc}", file=str(self.path)) from None
        kept = [line for line in data.splitlines(keepends=True) if line.strip() and _line_step(line) <= step]
        write_bytes_atomically(self.path, b"".join(kept), what="the metrics log",
                               hint="the log and the checkpoints are unchanged; continue with `p2p run --resume`")


def _line_step(line: bytes) -> int:
    try:
        return int(json.loads(line)[STEP])
    except (ValueError, KeyError, TypeError):  # a line cut short by a crash
        return 1 << 62


class RecordLog(Callback):
    """The run's own log, kept as a callback: a line at each logged step, at each epoch end with sample figures
    and at each evaluation."""

    def __init__(self, path: Path) -> None:
        self.file = RecordFile(path)
        self.step = 0

    def on_run_start(self, run: RunInfo) -> None:
        if run.resumed:
            self.file.forget_after(run.start_step)
        self.step = run.start_step
        self.file.open()

    def on_step(self, step: int, epoch: float, figures: Mapping[str, float | None]) -> None:
        self.step = step
        if figures:
            self.file.write(record(step, epoch, figures))

    def on_epoch_end(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        if figures:
            self.file.write(record(self.step, epoch, figures))

    def on_evaluation(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        if figures:
            self.file.write(record(self.step, epoch, figures))

    def on_run_end(self, status: str) -> None:
        self.file.close()


def is_number(value: object) -> bool:
    """A finite int or float (JSON booleans are ints in Python, and are not figures)."""
    return type(value) in NUMBER_TYPES and math.isfinite(value)  # type: ignore[arg-type]


@dataclass
class LogLines:
    """A log as read: its records in order (each with a numeric epoch), and how many lines were skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    unreadable: int = 0


def _parsed(lines: list[bytes]) -> Iterator[object]:
    """Each line parsed, or None where it does not parse. All lines at once first (one call of the
    decoder, fast on a long log), then one by one when a line is damaged."""
    try:
        yield from json.loads(b"[" + b",".join(lines) + b"]")
        return
    except ValueError:
        pass
    for line in lines:
        try:
            yield json.loads(line)
        except ValueError:
            yield None


def read_records(path: Path) -> LogLines:
    """The log's records; a missing file is an empty log, and lines that do not parse (the one a running
    trainer is writing, or one cut short by a crash) or have no numeric epoch are counted and skipped."""
    out = LogLines()
    try:
        data = path.read_bytes()
    except OSError:
        return out
    lines = [line for line in data.splitlines() if line.strip()]
    # the last line is often being written: parsed on its own, so it cannot spoil the fast path
    for line in itertools.chain(_parsed(lines[:-1]), _parsed(lines[-1:])):
        if isinstance(line, dict) and is_number(line.get(EPOCH)):
            out.records.append(line)
        else:
            out.unreadable += 1
    return out
