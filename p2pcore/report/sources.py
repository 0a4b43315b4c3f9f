"""What a run directory holds besides its log: recipe, sample grids, evaluations, checkpoint components.

Each reader returns nothing (or a note) for what is missing or half-written: a report is rewritten
while training goes on, so an absent folder or an unparsable file is a normal state, not an error.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError
from p2pcore.rundir import RunDir


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


def read_recipe(run: RunDir) -> Recipe:
    try:
        text = run.recipe.read_text(errors="replace")
    except OSError:
        return Recipe()
    try:
        return Recipe(text, tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        return Recipe(text)


def sample_frames(run: RunDir) -> list[tuple[int, str]]:
    """(epoch, path relative to the run directory) of each sample grid, oldest first."""
    return [(epoch, run.relative(path)) for epoch, path in run.sample_grids().items()]


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when it is missing, unreadable, half-written or not an object (a run's
    files are read while training still writes them)."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _evaluation(path: Path) -> dict[str, Any] | None:
    value = read_json_object(path)
    return value if value is not None and isinstance(value.get("metrics"), dict) else None


def read_evaluations(run: RunDir) -> Evaluations:
    files = run.epoch_evaluations()
    found = Evaluations(best=read_json_object(run.best_evaluation))
    for epoch in reversed(files):
        found.latest = _evaluation(files[epoch])
        if found.latest is not None:
            break
    best_epoch = (found.best or {}).get("epoch")
    if isinstance(best_epoch, int) and best_epoch in files:
        found.at_best = _evaluation(files[best_epoch])
    return found


def read_components(run: RunDir) -> Components:
    path = run.latest
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
