"""The columns of a run's sample grids, as its task declares them (`TaskSpec.visuals`, in column order).

The grid is written by the sample pass with one column per visual; the page names each column and says
what it is (a direction's input, output or target, or another image of a side) from the task's own
declaration, read without torch through the installed plugins. A run whose task cannot be resolved (its
plugin is not installed, its recipe is unreadable) gets grids without headers and a note saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from p2pcore.api.tasks import TaskSpec
from p2pcore.errors import P2PError
from p2pcore.plugins import Host, load_host

IMAGE_KINDS = {"label": "label map"}
"""How an image key is spoken of where it is not an image side's letter."""


@dataclass(frozen=True)
class Column:
    """One column of the grid: the task's tensor name and what it shows."""

    name: str
    role: str


@dataclass
class GridColumns:
    """The grid's columns, the task's name, or (no columns) why they are unknown."""

    columns: list[Column] = field(default_factory=list)
    task: str = ""
    note: str = ""


def _image(key: str) -> str:
    return IMAGE_KINDS.get(key, f"image {key}")


def role(name: str, key: str, spec: TaskSpec) -> str:
    """What a visual is: a direction's output or target, a real image a direction reads (a tensor no network
    computes), or another image of a side (a reconstruction); the direction named when the task has several."""
    many = len(spec.directions) > 1
    for direction, d in spec.directions.items():
        where = f" {direction}" if many else ""
        if name == d.tensor:
            return f"output{where} · {_image(key)}"
        if name == d.target:
            return f"target{where} · {_image(key)}"
        if key == d.input and not spec.tensors.get(name):
            return f"input{where} · {_image(key)}"
    made = "real" if not spec.tensors.get(name) else "generated"
    return f"{made} · {_image(key)}"


def columns_of(spec: TaskSpec) -> list[Column]:
    return [Column(name, role(name, key, spec)) for name, key in spec.visuals.items()]


@cache
def _host() -> Host:
    """The installed plugins, loaded once per process (a report is rewritten after each evaluation)."""
    return load_host()


def grid_columns(recipe: Mapping[str, Any], host: Host | None = None) -> GridColumns:
    """The grid columns of the task a run's recipe names, or a note saying why they are not known."""
    task = recipe.get("task")
    if task is None:
        return GridColumns(note="the recipe names no task")
    name = task if isinstance(task, str) else task.get("name", "") if isinstance(task, dict) else ""
    try:
        spec = (host or _host()).resolve("task", task, key="task").params.declare()
    except P2PError as error:
        return GridColumns(task=str(name), note=f"the task could not be resolved: {error.message}")
    except Exception as error:  # noqa: BLE001 - a plugin's broken declaration must not stop the page
        return GridColumns(task=str(name), note=f"the task's declaration failed: {error}")
    if not spec.visuals:
        return GridColumns(task=str(name), note=f"task {name!r} declares no visuals")
    return GridColumns(columns_of(spec), str(name))
