"""Result files: one JSON file per participant session, written atomically after every answer.

A session that stops half way (a closed tab) keeps the answers it has; a reader never sees a
half-written file. Reading checks every field, so a damaged file is named instead of skewing a summary.
"""

from __future__ import annotations

import json
import math
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

from p2pcore.atomicfile import create_atomically, write_text_atomically
from p2pcore.errors import P2PError

MAX_RESULT_BYTES = 16 * 1024 * 1024  # a session of thousands of trials is well under a megabyte

FORMAT = "p2p-study-session"
VERSION = 1


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=1) + "\n"


def write_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Replace `path` with `data` in one step (a :class:`P2PError` when it cannot be written: the old file
    stays)."""
    write_text_atomically(path, _dumps(data), what="the session's results")


def create_numbered(out: Path, data: Mapping[str, Any]) -> tuple[Path, int]:
    """Write `data` to the first free `<stem>-NNN<suffix>` beside `out`; the file and its number.

    A complete file is linked to the name only if nothing is there, so two sessions (or two servers writing
    to the same folder) never share a file and no file is ever empty.
    """
    for number in count(1):
        path = out.parent / f"{out.stem}-{number:03d}{out.suffix or '.json'}"
        if path.exists() or path.is_symlink():
            continue
        if create_atomically(path, _dumps({**data, "participant": number}).encode(), what="the session's results"):
            return path, number
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Answer:
    trial: int
    practice: bool
    image: str
    real_side: str
    chosen: str
    rt_ms: int

    @property
    def fooled(self) -> bool:
        """The generated image was chosen as real."""
        return self.chosen != self.real_side


@dataclass(frozen=True)
class SessionResult:
    path: Path
    session: str
    participant: int
    complete: bool
    settings: dict[str, Any]
    folders: tuple[str, str]  # absolute paths of the real and the generated images' folders
    answers: tuple[Answer, ...]

    @property
    def judged(self) -> list[Answer]:
        """The answers that count: trials after practice."""
        return [a for a in self.answers if not a.practice]


def _fail(path: Path, message: str, key: str | None = None) -> P2PError:
    return P2PError(message, file=str(path), key=key,
                    hint="give the JSON files `p2p study` writes (results-NNN.json), complete and unedited")


def _field(path: Path, data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    value = data.get(key)
    if key not in data or not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        state = "missing" if key not in data else f"not {'an' if name[0] in 'aeiou' else 'a'} {name}"
        raise _fail(path, f"{key} is {state}", key=f"{where}{key}")
    return value


def _answer(path: Path, raw: Any, index: int) -> Answer:
    where = f"answers[{index}]."
    if not isinstance(raw, Mapping):
        raise _fail(path, "an answer is not a JSON object", key=f"answers[{index}]")
    trial = _field(path, raw, "trial", int, where)
    practice = _field(path, raw, "practice", bool, where)
    image = _field(path, raw, "image", str, where)
    real_side = _field(path, raw, "real_side", str, where)
    chosen = _field(path, raw, "chosen", str, where)
    rt_ms = _field(path, raw, "rt_ms", (int, float), where)
    for key, side in (("real_side", real_side), ("chosen", chosen)):
        if side not in ("left", "right"):
            raise _fail(path, f"{key} is {side!r}, not left or right", key=where + key)
    if not math.isfinite(rt_ms) or rt_ms < 0:
        raise _fail(path, f"rt_ms is {rt_ms}, not a response time", key=where + "rt_ms")
    return Answer(trial, practice, image, real_side, chosen, int(rt_ms))


def _read_text(path: Path) -> str:
    """The file's text, refused before reading where it is not a regular file (a FIFO would block, a device
    never ends) or larger than any result file."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _fail(path, "not a regular file")
        if info.st_size > MAX_RESULT_BYTES:
            raise _fail(path, f"{info.st_size} bytes, more than a result file holds ({MAX_RESULT_BYTES})")
        with path.open("rb") as file:
            return file.read(MAX_RESULT_BYTES + 1).decode("utf-8")
    except FileNotFoundError:
        raise _fail(path, "no such result file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read the result file: {getattr(exc, 'strerror', None) or exc}") from None


def read_session(path: Path) -> SessionResult:
    """A result file, every field checked; a P2PError naming the file and the key otherwise."""
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        state = "truncated" if exc.pos >= len(text.rstrip()) else "not valid JSON"
        raise _fail(path, f"the result file is {state} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise _fail(path, "the result file nests its values deeper than a result file does") from None
    except ValueError as exc:  # an integer longer than Python converts
        raise _fail(path, f"the result file holds a value p2p does not read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _fail(path, "not a p2p study result file", key="format")
    if data.get("version") != VERSION:
        raise _fail(path, f"result format version {data.get('version')!r} is not {VERSION}", key="version")
    answers = _field(path, data, "answers", list)
    parsed = tuple(_answer(path, raw, i) for i, raw in enumerate(answers))
    if [a.trial for a in parsed] != list(range(len(parsed))):
        raise _fail(path, "the answers are not trials 0, 1, 2, ... in order", key="answers")
    folders = (_field(path, data, "real_dir_absolute", str), _field(path, data, "fake_dir_absolute", str))
    return SessionResult(path, _field(path, data, "session", str), _field(path, data, "participant", int),
                         _field(path, data, "complete", bool), _field(path, data, "settings", dict), folders, parsed)


def read_sessions(paths: list[Path]) -> list[SessionResult]:
    """Every file read and checked; the same session given twice (a copied file) is an error."""
    sessions: list[SessionResult] = []
    seen: dict[str, Path] = {}
    for path in paths:
        result = read_session(path)
        if result.session in seen:
            raise P2PError(f"the same session as {seen[result.session]}", file=str(path), key="session",
                           hint="give each participant's file once")
        seen[result.session] = path
        sessions.append(result)
    return sessions
