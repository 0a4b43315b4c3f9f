"""The text of the progress display, laid out for a terminal width: the status line (epoch, bar, steps, rate,
ETA) that keeps its figures visible at any width from 40 columns, and the figure lines (loss terms, epoch-end
figures) that wrap by group and shorten what does not fit. Plain functions of plain values, so that a
display never fails on what a run logs: None, NaN, infinities, huge integers or text all print."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BAR_DONE, BAR_LEFT = "━", "─"
ELLIPSIS = "…"
MIN_BAR = 10
"""The narrowest bar worth drawing; below it the line drops the bar (then the epoch) before any figure."""
MAX_BAR = 40


def number(value: object) -> str:
    """A figure as the display shows it: four significant digits with trailing zeros kept (0.8400 beside
    0.8397), integers as they are, `nan`, `inf`, `-inf`, `-` for a missing one; anything else as short text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value) if -10**12 < value < 10**12 else ("-" if value < 0 else "") + "huge"
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        text = str(value)
        return text if len(text) <= 12 else text[:11] + ELLIPSIS
    if math.isnan(as_float):
        return "nan"
    if math.isinf(as_float):
        return "inf" if as_float > 0 else "-inf"
    return f"{as_float:#.4g}".replace("e+", "e")


def duration(seconds: float | None) -> str:
    """H:MM:SS (with days past a day); `-:--:--` when not known."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-:--:--"
    whole = int(min(seconds, 10**9) + 0.5)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def speed(rate: float | None, unit: str = "it") -> str:
    """Steps (or files) per second; seconds per step when slower than one a second."""
    if rate is None or not math.isfinite(rate) or rate <= 0:
        return f"- {unit}/s"
    if rate < 1:
        return f"{1 / rate:.1f} s/{unit.removesuffix('s')}"
    return f"{rate:.1f} {unit}/s" if rate < 1000 else f"{rate:.0f} {unit}/s"


@dataclass(frozen=True)
class StatusLine:
    """One line of at most `width` characters; `bar` is where the bar lies in `text` and how much of it is
    done (start, done end, end), or None when the line had no room for one."""

    text: str
    bar: tuple[int, int, int] | None = None


def status_line(*, step: int, total: int, rate: float | None, eta: float | None, width: int,
                epoch: float | None = None, epochs: int | None = None) -> StatusLine:
    """`epoch 2.50/8 ━━━━━──── 140/400  12.3 it/s  ETA 0:00:21` in `width` columns: the steps, the rate and
    the ETA always; the bar and the epoch where they fit."""
    steps = f"{step}/{total}"
    right = f"{steps}  {speed(rate)}  ETA {duration(eta)}"
    label = None if epochs is None else f"epoch {'-' if epoch is None else f'{epoch:.2f}'}/{epochs}"
    for left in ([label] if label else []) + [""]:
        prefix = f"{left} " if left else ""
        room = width - len(prefix) - len(right) - 1
        if room >= MIN_BAR:
            size = min(room, MAX_BAR)
            done = _done(step, total, size)
            text = f"{prefix}{BAR_DONE * done}{BAR_LEFT * (size - done)} {right}"
            return StatusLine(text, (len(prefix), len(prefix) + done, len(prefix) + size))
        if len(prefix) + len(right) <= width and left:
            return StatusLine(prefix + right)
    return StatusLine(clip(right, width))


def _done(step: int, total: int, size: int) -> int:
    if total <= 0:
        return 0
    return max(0, min(size, int(size * step / total)))


def clip(text: str, width: int) -> str:
    """`text` cut to `width` columns, with an ellipsis where it was cut."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[:width - 1] + ELLIPSIS


def groups(figures: Mapping[str, object]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Figures grouped by the first part of their key (`G/gan` in G), in the order they come, each value
    formatted. What every name of a group starts with joins the group's label (`eval/a2b`), and a figure's
    parts follow it as `/part` (`ssim 0.8100  /mean 0.8000`), so that long keys take little room."""
    found: dict[str, list[tuple[str, str]]] = {}
    for key, value in figures.items():
        head, _, rest = str(key).partition("/")
        group, name = (head, rest) if rest else ("", head)
        found.setdefault(group, []).append((name, number(value)))
    out = []
    for group, items in found.items():
        firsts = {name.split("/", 1)[0] for name, _ in items}
        if group and len(firsts) == 1 and all("/" in name for name, _ in items):
            group, items = f"{group}/{firsts.pop()}", [(name.split("/", 1)[1], value) for name, value in items]
        shown, base = [], None
        for name, value in items:
            if base is not None and name.startswith(f"{base}/"):
                shown.append((name[len(base):], value))
            else:
                shown.append((name, value))
                base = name
        out.append((group, shown))
    return out


def figure_lines(grouped: Iterable[tuple[str, list[tuple[str, str]]]], width: int, *, indent: int = 2,
                 max_lines: int = 2, heading: str = "") -> list[str]:
    """Each group on lines of its own (`  G: gan 0.6931  l1 12.35`), wrapped at `width` below its label and at
    most `max_lines` long: a name too long for a line is shortened, and figures that do not fit the lines end
    in `+N more`. `heading` goes before the first group's label (`epoch 3 eval: ...`)."""
    lines: list[str] = []
    for number_, (group, items) in enumerate(grouped):
        label = " ".join(part for part in (heading if number_ == 0 else "", f"{group}:" if group else "") if part)
        lines += _wrap(label, [f"{name} {value}" for name, value in items], width, indent, max_lines)
    return lines


def _wrap(label: str, tokens: list[str], width: int, indent: int, max_lines: int) -> list[str]:
    first = " " * indent + (f"{label} " if label else "")
    hang = " " * (len(first) if len(first) <= width // 3 else indent + 2)
    lines: list[str] = []
    current = first
    bare = True  # nothing but the label or the hanging indent yet
    for at, token in enumerate(tokens):
        gap = "" if bare else "  "
        if len(current) + len(gap) + len(token) <= width:
            current, bare = current + gap + token, False
            continue
        if not bare:  # a new line, if one is left
            if len(lines) + 1 >= max_lines:
                return lines + [_more(current, len(tokens) - at, width)]
            lines.append(current)
            current, bare = hang, True
        current, bare = current + _shorten(token, width - len(current)), False
    return lines + [current] if not bare or not lines else lines


def _shorten(token: str, room: int) -> str:
    """`name value` in `room` columns: the name cut short before the value is."""
    if len(token) <= room:
        return token
    name, _, value = token.rpartition(" ")
    keep = room - len(value) - 2
    if name and keep >= 1:
        return f"{name[:keep]}{ELLIPSIS} {value}"
    return clip(token, room)


def _more(line: str, left: int, width: int) -> str:
    """`line` with `+N more` at its end, dropping figures from its end until that fits."""
    while True:
        more = f"  +{left} more"
        if len(line) + len(more) <= width:
            return line + more
        cut = line.rfind("  ")
        if cut <= 0 or not line[:cut].strip():
            return clip(line, width)
        line, left = line[:cut], left + 1
