"""Recipe files: safe TOML reading (size and nesting limits), `extends` chains, `unset` and `--set` overrides.

A recipe may `extends` another file (paths relative to itself); tables merge key by key, and a
component table that names a different component replaces the inherited one whole. A recipe's
top-level `unset` lists key paths it removes from what it extends (``unset = ["model.generator_ba",
"eval.best"]``), before its own keys apply; ``--set unset=eval.best`` removes keys likewise. `origins`
and `locate` place an error in the file (or the `--set`) that wrote the key it concerns.
"""

from __future__ import annotations

import copy
import os
import re
import stat
import tomllib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError, did_you_mean

MAX_RECIPE_BYTES = 512 * 1024
"""The largest recipe file p2p reads (recipes are small text files; parsing time grows with size)."""
MAX_RECIPE_DEPTH = 32
"""The deepest nesting of tables, arrays and dotted key parts in a recipe."""
MAX_EXTENDS = 32
"""The most `extends` links followed from one recipe."""
MAX_RECIPE_INT = 2**63 - 1
"""TOML integers are 64-bit: a recipe's integers lie in -2**63 .. 2**63 - 1 (larger ones are refused, by key)."""
MAX_INT_DIGITS = 4300
"""The longest integer Python reads from text (`sys.get_int_max_str_digits`); longer ones are found by hand."""
UNSET = "unset"
"""The top-level key of a recipe (and of `--set`) that lists key paths to remove from what it extends."""
COMPONENT_KEYS = frozenset({"task", "data", "schedule"})
"""Top-level keys that name a component: `--set task.pool_size=10` turns `task = "cyclegan"` into a table."""

# Strings and comments, which may hold any brackets and dots; blanked out (newlines kept) before counting.
_TOML_STRINGS = re.compile(r'"""(?:[^\\]|\\[\s\S])*?"""|' r"'''[\s\S]*?'''|" r'"(?:[^"\\\n]|\\.)*"|'
                           r"'[^'\n]*'|#[^\n]*")
_TOML_BRACKETS = re.compile(r"[\[\]{}]")
_TOML_KEY_ENDS = re.compile(r"[=\n,\[\]{}]")
_NESTING_HINT = (f"recipes nest tables, arrays and dotted keys at most {MAX_RECIPE_DEPTH} levels deep; check "
                 "that this is the recipe you meant")


class _NotARecipeFile(Exception):
    """The path is not a regular file of a recipe's size; `hint` says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _shown_key(key: str) -> str:
    """A key path as an error names it: at most 120 characters, so a pathological one stays on one screen."""
    return key if len(key) <= 120 else key[:117] + "..."


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _check_recipe_file(mode: int, size: int) -> None:
    if stat.S_ISDIR(mode):
        raise _NotARecipeFile("this is a folder, not a recipe file", "give the path of a .toml recipe inside it")
    if not stat.S_ISREG(mode):
        raise _NotARecipeFile(f"this is {_file_kind(mode)}, not a recipe file",
                              "a recipe is a regular .toml file; give its path")
    if size > MAX_RECIPE_BYTES:
        raise _NotARecipeFile(f"the file is larger than {MAX_RECIPE_BYTES // 1024} KiB, the most a recipe may be",
                              "recipes are small text files: check that this is the recipe you meant")


def _recipe_bytes(path: Path) -> bytes:
    """The contents of a regular file of at most MAX_RECIPE_BYTES, checked before reading."""
    info = os.stat(path)
    _check_recipe_file(info.st_mode, info.st_size)  # before opening: opening a FIFO waits for a writer
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as f:
        info = os.fstat(f.fileno())
        _check_recipe_file(info.st_mode, info.st_size)  # the file opened is a checked one
        data = f.read(MAX_RECIPE_BYTES + 1)
    _check_recipe_file(stat.S_IFREG, len(data))  # it may have grown since
    return data


def _blank(match: re.Match[str]) -> str:
    text = match.group()
    return ("" if text.startswith("#") else '""') + "\n" * text.count("\n")


def _check_nesting_text(text: str, path: Path) -> None:
    """Refuse deep nesting before tomllib parses it: brackets and braces left open (tomllib recurses on
    them) and dotted keys of many parts (which it parses in quadratic time)."""
    bare = _TOML_STRINGS.sub(_blank, text)

    def line(at: int) -> int:
        return bare.count("\n", 0, at) + 1

    if bare.count("[") + bare.count("{") > MAX_RECIPE_DEPTH:
        depth = 0
        for match in _TOML_BRACKETS.finditer(bare):
            if match.group() in "[{":
                depth += 1
                if depth > MAX_RECIPE_DEPTH:
                    raise P2PError(f"arrays or tables nested more than {MAX_RECIPE_DEPTH} deep "
                                   f"(line {line(match.start())})", file=str(path), hint=_NESTING_HINT)
            else:
                depth = max(0, depth - 1)
    if bare.count(".") >= MAX_RECIPE_DEPTH and \
            max(piece.count(".") for piece in _TOML_KEY_ENDS.split(bare)) >= MAX_RECIPE_DEPTH:
        start = 0
        for match in _TOML_KEY_ENDS.finditer(bare):
            if bare.count(".", start, match.start()) >= MAX_RECIPE_DEPTH:
                break
            start = match.end()
        raise P2PError(f"a dotted key of more than {MAX_RECIPE_DEPTH} parts (line {line(start)})", file=str(path),
                       hint=_NESTING_HINT)


def _check_nesting_data(data: dict[str, Any], path: Path) -> None:
    """Refuse parsed data nested deeper than MAX_RECIPE_DEPTH (tables, dotted keys and arrays together)."""
    level: list[Any] = [data]
    for _ in range(MAX_RECIPE_DEPTH + 1):  # level by level, tables and arrays only
        level = [value for node in level for value in (node.values() if isinstance(node, dict) else node)
                 if isinstance(value, dict | list)]
        if not level:
            return
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:  # find a key path that goes too deep, to name it
        node, where = stack.pop()
        if len(where) > MAX_RECIPE_DEPTH:
            key = ".".join(where)
            raise P2PError(f"tables and arrays nested more than {MAX_RECIPE_DEPTH} deep", file=str(path),
                           key=_shown_key(key), hint=_NESTING_HINT)
        children = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((value, (*where, str(key))) for key, value in children if isinstance(value, dict | list))


def read_toml(path: Path, *, extended_by: Path | None = None) -> dict[str, Any]:
    """Read a recipe file: a regular file of at most MAX_RECIPE_BYTES of UTF-8 TOML, nested at most
    MAX_RECIPE_DEPTH deep; anything else raises P2PError naming the file.

    `extended_by`: the recipe whose `extends` names this one; when this file cannot be read at all,
    the error is placed at that recipe's `extends` key.
    """
    def unreadable(message: str, hint: str | None = None) -> P2PError:
        if extended_by is None:
            return P2PError(message, file=str(path), hint=hint)
        reason = message.replace("this is ", "which is ", 1) if message.startswith("this is ") else f"but {message}"
        return P2PError(f"`extends` names {path}, {reason}", file=str(extended_by), key="extends",
                        hint=hint or "paths in `extends` are relative to the recipe that names them")

    try:
        raw = _recipe_bytes(path)
    except _NotARecipeFile as exc:
        raise unreadable(exc.message, exc.hint) from None
    except FileNotFoundError:
        raise unreadable("recipe file not found", "check the path; ready recipes are in recipes/") from None
    except IsADirectoryError:
        raise unreadable("this is a folder, not a recipe file", "give the path of a .toml recipe inside it") from None
    except OSError as exc:
        raise unreadable(f"cannot read the recipe: {exc.strerror or exc}") from None
    except ValueError as exc:  # a path with a NUL character
        raise unreadable(f"cannot read the recipe: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise P2PError("the recipe is not UTF-8 text", file=str(path),
                       hint="save it as UTF-8 (TOML files must be UTF-8)") from None
    _check_nesting_text(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise P2PError(f"not valid TOML: {exc}", file=str(path), hint="fix the syntax at that line") from None
    except RecursionError:
        raise P2PError("the recipe is nested too deeply to read", file=str(path), hint=_NESTING_HINT) from None
    except ValueError:  # an integer too long for Python to read (more than 4,300 digits)
        raise _long_integer(text, path) from None
    _check_nesting_data(data, path)
    check_integers(data, file=str(path))
    return data


_LONG = "\ue000p2p-long-integer\ue000"
_NUMBERS = re.compile(_TOML_STRINGS.pattern + r"|(?P<number>[+-]?\d[\d_]*)")


def _huge(key: str, digits: int, file: str | None) -> P2PError:
    return P2PError(f"an integer of {digits:,} digits: recipes hold 64-bit integers (at most {MAX_RECIPE_INT:,})",
                    file=file, key=_shown_key(key),
                    hint="check the value; seeds, sizes and counts are far smaller")


def _long_integer(text: str, path: Path) -> P2PError:
    """The error for a TOML text whose integer of more than 4,300 digits Python will not read, naming its key:
    the text is parsed again with each such integer replaced by a marker string, which is then looked for."""
    long = [m for m in _NUMBERS.finditer(text) if m.group("number") and
            sum(c.isdigit() for c in m.group("number")) > MAX_INT_DIGITS]
    if not long:
        return P2PError("the recipe holds a value p2p cannot read", file=str(path), hint="check its numbers")
    digits = sum(c.isdigit() for c in long[0].group("number"))
    marked = "".join(piece for start, m in zip([0, *(m.end() for m in long)], long, strict=False)
                     for piece in (text[start:m.start()], f'"{_LONG}"')) + text[long[-1].end():]
    try:
        where = _find_value(tomllib.loads(marked), _LONG)
    except (ValueError, RecursionError):
        where = None
    line = text.count("\n", 0, long[0].start()) + 1
    return _huge(where or f"line {line}", digits, str(path))


def _walk(data: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every value in nested tables and arrays with its key path, level by level (breadth first)."""
    queue: deque[tuple[Any, tuple[str, ...]]] = deque([(data, ())])
    while queue:
        node, where = queue.popleft()
        items = node.items() if isinstance(node, Mapping) else enumerate(node)
        for key, value in items:
            path = (*where, str(key))
            yield path, value
            if isinstance(value, Mapping | list | tuple):
                queue.append((value, path))


def _find_value(data: Any, wanted: Any) -> str | None:
    """The dotted key path of the first value equal to `wanted` in nested tables and arrays."""
    return next((".".join(path) for path, value in _walk(data) if isinstance(value, str) and value == wanted), None)


def check_integers(data: Any, *, file: str | None = None) -> None:
    """Refuse integers beyond 64 bits (TOML's integers; a Python int of thousands of digits cannot even be
    printed in an error), naming the key of the first one."""
    for path, value in _walk(data):
        if isinstance(value, int) and not isinstance(value, bool) and not -MAX_RECIPE_INT - 1 <= value <= \
                MAX_RECIPE_INT:
            digits = len(str(abs(value))) if value.bit_length() < 14_000 else \
                int(value.bit_length() * 0.30103) + 1  # about: str() fails past 4,300 digits
            raise _huge(".".join(path), digits, file)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into `base`; a table naming another component replaces the old one."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping) and old.get("name", value.get("name")) == \
                value.get("name", old.get("name")):
            out[key] = merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    for key, value in data.items():
        yield (*prefix, key)
        if isinstance(value, Mapping):
            yield from _leaves(value, (*prefix, key))


def origins(path: Path, overrides: Iterable[str] = ()) -> dict[tuple[str, ...], str]:
    """Which file (or `--set`) each key path of the merged recipe comes from, for error messages."""
    chain = []
    current: Path | None = path.resolve()
    while current is not None and current.exists() and current not in chain:
        chain.append(current)
        try:
            parent = read_toml(current).get("extends")
        except P2PError:
            break
        current = (current.parent / parent).resolve() if isinstance(parent, str) else None
    found: dict[tuple[str, ...], str] = {}
    for file in reversed(chain):
        shown = str(path) if file == path.resolve() else str(file)
        found.update(dict.fromkeys(_leaves(read_toml(file)), shown))
    for text in overrides:
        found[tuple(parse_override(text)[0])] = f"--set {text}"
    return found


def locate(error: P2PError, where: Mapping[tuple[str, ...], str], default: str) -> P2PError:
    """Place an error in the file that wrote the key it concerns (the longest matching key path)."""
    parts = tuple(error.key.split(".")) if error.key else ()
    while parts and parts not in where:
        parts = parts[:-1]
    origin = where.get(parts, default)
    if origin.startswith("--set "):  # the recipe is still the file; say which override wrote the key
        return P2PError(f"{error.message} (from {origin})", file=error.file or default, key=error.key,
                        hint=error.hint, details=error.details)
    return error.with_location(file=origin)


def _unset_paths(value: Any, *, file: str | None, origin: str) -> list[tuple[str, ...]]:
    """The key paths an `unset` value names: a list of dotted key paths (or, in `--set`, one path)."""
    items = [value] if isinstance(value, str) and origin.startswith("--set") else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise P2PError(f"{origin}: `unset` takes a list of key paths, got {value!r}", file=file, key=UNSET,
                       hint='for example unset = ["model.generator_ba", "eval.best"]')
    paths = [tuple(part.strip() for part in item.split(".")) for item in items]
    for item, parts in zip(items, paths, strict=True):
        if not all(parts):
            raise P2PError(f"{origin}: `unset` names {item!r}, which is not a key path", file=file, key=UNSET,
                           hint='dotted table and key names, for example "eval.best" or "model.generator_ba"')
    return paths


def unset(data: Mapping[str, Any], value: Any, *, file: str | None = None, origin: str = "unset") -> dict[str, Any]:
    """`data` without the key paths `value` lists (the `unset` of a recipe, or of `--set`). Each path must
    name a key of `data`, through tables: removing nothing is a misspelling."""
    out = copy.deepcopy(dict(data))
    for parts in _unset_paths(value, file=file, origin=origin):
        node: Any = out
        for depth, part in enumerate(parts):
            if isinstance(node, list):
                raise P2PError(f"{origin}: {'.'.join(parts[:depth])!r} is a list, and unset removes keys of tables",
                               file=file, key=UNSET, hint="give the whole list again instead")
            if not isinstance(node, dict) or part not in node:
                key = ".".join(parts)
                known = [".".join((*parts[:depth], k)) for k in node] if isinstance(node, dict) else []
                guess = did_you_mean(key, known)
                where = "the recipe" if origin.startswith("--set") else "the recipes it extends"
                loss = ("; a loss term the task supplies is turned off with weight = 0"
                        if parts[0] == "loss" else "")
                raise P2PError(f"{origin}: {key!r} is not set by {where}, so there is nothing to remove",
                               file=file, key=UNSET,
                               hint=(f"did you mean {guess!r}?" if guess else "name keys as dotted paths "
                                     "(model.generator_ba, eval.best)") + loss)
            if depth == len(parts) - 1:
                del node[part]
            else:
                node = node[part]
    return out


def read_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe at `path` merged over the recipes its `extends` chain names (at most MAX_EXTENDS links,
    followed one by one, without recursion); each recipe's `unset` removes keys from what it extends
    before its own keys merge."""
    visited = list(seen)
    layers: list[tuple[Path, dict[str, Any]]] = []
    current = path.resolve()
    named_by = visited[-1] if visited else None
    while True:
        if current in visited:
            chain = " -> ".join(str(p) for p in (*visited, current))
            raise P2PError(f"`extends` forms a cycle: {chain}", file=str(visited[-1]), key="extends",
                           hint="remove one of the `extends` lines")
        data = read_toml(current, extended_by=named_by)
        visited.append(current)
        parent = data.pop("extends", None)
        layers.append((current, data))
        if parent is None and UNSET in data:
            raise P2PError("`unset` removes keys from the recipe this one extends, but it extends none",
                           file=str(current), key=UNSET, hint="drop `unset`, or add `extends`")
        if parent is None:
            break
        if not isinstance(parent, str):
            raise P2PError("`extends` must be a path string", file=str(current), key="extends")
        parent_path = current.parent / parent
        if not parent_path.exists():
            raise P2PError(f"the recipe it extends does not exist: {parent_path}", file=str(current),
                           key="extends", hint="paths in `extends` are relative to the recipe that names them")
        if len(layers) > MAX_EXTENDS:
            raise P2PError(f"`extends` links more than {MAX_EXTENDS} recipes in a row, from {visited[len(seen)]}",
                           file=str(current), key="extends",
                           hint=f"a recipe may build on at most {MAX_EXTENDS} others in a chain; merge some of them")
        named_by, current = current, parent_path.resolve()
    merged = layers.pop()[1]
    while layers:
        file, data = layers.pop()
        if UNSET in data:
            merged = unset(merged, data.pop(UNSET), file=str(path if file == path.resolve() else file))
        merged = merge(merged, data)
    return merged


def _depth(value: str) -> int:
    """How deeply arrays and inline tables nest in a TOML value (strings ignored)."""
    depth = deepest = 0
    for bracket in _TOML_BRACKETS.findall(_TOML_STRINGS.sub("", value)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.epochs=5` -> (["train", "epochs"], 5); values are TOML, bare words are strings."""
    if "=" not in text:
        raise P2PError(f"--set expects key.path=value, got {text!r}", hint="for example --set train.epochs=5")
    key, raw = text.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if not all(path):
        raise P2PError(f"--set has an empty key in {key!r}", hint="for example --set model.generator.ngf=32")
    if len(path) > MAX_RECIPE_DEPTH or len(raw) > 64 * 1024 or _depth(raw) > MAX_RECIPE_DEPTH:
        raise P2PError(f"--set {key.strip()}=...: the value or key is too large or too deeply nested",
                       key=key.strip(), hint=_NESTING_HINT)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except ValueError:  # an integer too long for Python to read (more than 4,300 digits)
        raise _huge(key.strip(), sum(c.isdigit() for c in raw), None) from None
    check_integers({key.strip(): value})
    return path, value


def _list_index(items: list[Any], part: str, key: str) -> int:
    """The position `part` names in a recipe list (`eval.metrics.1.segmenter.weights`: the second metric)."""
    if not part.isdigit() or int(part) >= len(items):
        raise P2PError(f"--set {key}: {part!r} is not a position in a list of {len(items)}", key=key,
                       hint=f"count from 0: 0 to {len(items) - 1}" if items else "the list is empty")
    return int(part)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """`--set key.path=value` overrides applied in order; ``--set unset=key.path`` removes a key."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        key = ".".join(path)
        if path[0] == UNSET:
            if len(path) > 1:
                raise P2PError(f"--set {text}: `unset` is not a table", key=UNSET,
                               hint="--set unset=eval.best, or a list: --set 'unset=[\"eval.best\"]'")
            data = unset(data, value, origin=f"--set {text}")
            continue
        node: Any = data
        for part in path[:-1]:
            at: str | int = _list_index(node, part, key) if isinstance(node, list) else part
            child = node[at] if isinstance(node, list) else node.get(at)
            if isinstance(child, str) and (node is not data or at in COMPONENT_KEYS):  # `norm = "batch"`,
                child = {"name": child}                                       # `task = "cyclegan"`: tables
            node[at] = child if isinstance(child, dict | list) else {}
            node = node[at]
        if isinstance(node, list):
            node[_list_index(node, path[-1], key)] = value
            continue
        if path[-1] == "name" and len(path) > 1 and node.get("name", value) != value:
            kept = {"weight": node["weight"]} if path[0] == "loss" and len(path) == 3 and "weight" in node else {}
            node.clear()  # another component: the old one's parameters do not apply to it (a term keeps its weight)
            node.update(kept)
        node[path[-1]] = value
    return data
