"""What a run directory holds besides its log: recipe, sample grids, evaluations, checkpoint components.

Each reader returns nothing (or a note) for what is missing or half-written: a report is rewritten
while training goes on, so an absent folder or an unparsable file is a normal state, not an error.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError

EPOCH_FILE = re.compile(r"epoch_(\d+)\.(png|json)")


@dataclass
class Recipe:
    text: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluations:
    """The latest evaluation, the one of the best checkpoint's epoch, and `eval/best.json`."""

    latest: dict[str, Any] | None = None
    at_best: dict[str, Any] | None = None
    best: dict[str, Any] | None = None


@dataclass
class Components:
    """The checkpoint's component records (plain dicts), or why they could not be read."""

    rows: list[dict[str, str]] = field(default_factory=list)
    p2p_version: str | None = None
    step: int | None = None
    epoch: int | None = None
    note: str | None = None


def read_recipe(run_dir: Path) -> Recipe:
    try:
        text = (run_dir / "recipe.toml").read_text(errors="replace")
    except OSError:
        return Recipe()
    try:
        return Recipe(text, tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        return Recipe(text)


def epoch_files(folder: Path, suffix: str) -> dict[int, str]:
    """`epoch_NNN.<suffix>` file names in a folder, by epoch; nothing when the folder is missing."""
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return {}
    found = {}
    for name in names:
        match = EPOCH_FILE.fullmatch(name)
        if match and match.group(2) == suffix:
            found[int(match.group(1))] = name
    return dict(sorted(found.items()))


def sample_frames(run_dir: Path) -> list[tuple[int, str]]:
    """(epoch, path relative to the run directory) of each sample grid, oldest first."""
    return [(epoch, f"samples/{name}") for epoch, name in epoch_files(run_dir / "samples", "png").items()]


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _evaluation(path: Path) -> dict[str, Any] | None:
    value = _json(path)
    return value if value is not None and isinstance(value.get("metrics"), dict) else None


def read_evaluations(run_dir: Path) -> Evaluations:
    folder = run_dir / "eval"
    files = epoch_files(folder, "json")
    found = Evaluations(best=_json(folder / "best.json"))
    for epoch in reversed(files):
        found.latest = _evaluation(folder / files[epoch])
        if found.latest is not None:
            break
    best_epoch = (found.best or {}).get("epoch")
    if isinstance(best_epoch, int) and best_epoch in files:
        found.at_best = _evaluation(folder / files[best_epoch])
    return found


def read_components(run_dir: Path) -> Components:
    path = run_dir / "checkpoints" / "latest.safetensors"
    if not path.exists():
        return Components(note="no checkpoint yet")
    from p2pcore.checkpoint.format import read_header

    try:
        meta = read_header(path).meta
    except P2PError as error:
        return Components(note=f"the latest checkpoint could not be read: {error.message}")
    except OSError as error:
        return Components(note=f"the latest checkpoint could not be read: {error.strerror}")
    rows = [{"kind": c.kind, "name": c.name, "distribution": c.distribution, "version": c.version}
            for c in meta.components]
    return Components(rows, meta.p2p_version, meta.step, meta.epoch)
