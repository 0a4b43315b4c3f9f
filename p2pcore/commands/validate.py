"""`p2p validate RECIPE`: a recipe checked against the installed components, without torch or training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pcore.commands import common
from p2pcore.commands.common import SetOption, console


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(recipe: Annotated[Path, typer.Argument(help="recipe TOML file")], set_: SetOption = None) -> None:
    """Check a recipe against the installed components without training.

    Example:
    p2p validate recipes/quickstart.toml --set train.epochs=2
    """
    host = common.host()
    parsed = common.load_recipe(recipe, set_, host)
    model = ", ".join(f"{role}={ref.name}" for role, ref in parsed.model.items())
    losses = ", ".join(f"{label}={spec.name}x{spec.weight:g}" for label, spec in parsed.loss.items())
    console.print(f"[green]ok[/green]: {recipe} (task {parsed.task.name}, data {parsed.data.name}, {model}; "
                  f"{losses})")
