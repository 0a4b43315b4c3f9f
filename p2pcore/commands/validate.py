"""`p2p validate RECIPE`: a recipe checked against the installed components, without torch or training; the
memory its data asks for is estimated too, and with `--memory` its networks' (which imports torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pcore.commands import common
from p2pcore.commands.common import SetOption, console
from p2pcore.errors import P2PError
from p2pcore.recipe.memory import check_needs, data_needs


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(recipe: Annotated[Path, typer.Argument(help="recipe TOML file")], set_: SetOption = None,
             memory: Annotated[bool, typer.Option(help="also count the networks' parameters against the memory "
                                                  "budget (P2P_MEMORY_BUDGET, else this machine's memory), as "
                                                  "`p2p run` does at its start: builds them on torch's meta "
                                                  "device, so imports torch")] = False) -> None:
    """Check a recipe against the installed components without training.

    The memory its data asks for (a declared item count's shuffled order, the batches in flight) is checked
    against the budget; --memory adds the networks' parameters, gradients and optimiser state.

    Example:
    p2p validate recipes/quickstart.toml --set train.epochs=2
    """
    host = common.host()
    parsed = common.load_recipe(recipe, set_, host)
    try:
        if memory:
            from p2pcore.engine.build.memory import check_recipe_memory

            check_recipe_memory(parsed, host, command="p2p validate")
        else:
            check_needs(data_needs(parsed), command="p2p validate")
    except P2PError as error:
        raise error.with_location(file=str(recipe)) from None
    model = ", ".join(f"{role}={ref.name}" for role, ref in parsed.model.items())
    losses = ", ".join(f"{label}={spec.name}x{spec.weight:g}" for label, spec in parsed.loss.items())
    console.print(f"[green]ok[/green]: {recipe} (task {parsed.task.name}, data {parsed.data.name}, {model}; "
                  f"{losses})")
