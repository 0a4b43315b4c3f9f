"""`p2p inspect CHECKPOINT`: what a checkpoint holds, as tables or JSON, read without building its networks.

Every string in the tables comes from the file, so each is printed through `plain`: a checkpoint cannot move the
cursor, clear the screen or style the output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from p2pcore.commands.common import JsonOption, console, plain


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)


def inspect(checkpoint: Annotated[Path, typer.Argument(help="a p2p checkpoint (.safetensors)")],
            recipe: Annotated[bool, typer.Option("--recipe", help="also print the recipe it was trained with, "
                                                 "after the tables")] = False,
            as_json: JsonOption = False) -> None:
    """What a checkpoint holds: components and versions, step, epoch, parameter counts, and its recipe.

    Example:
    p2p inspect runs/quickstart/checkpoints/latest.safetensors
    p2p inspect runs/quickstart/checkpoints/latest.safetensors --recipe
    """
    import tomli_w

    from p2pcore.inspect import summarize

    info = summarize(checkpoint)
    if as_json:
        console.print_json(json.dumps(info), ensure_ascii=True)
        return
    source = f", from {plain(info['source'])}" if info.get("source") else ""
    console.print(f"[bold]{plain(checkpoint)}[/bold]: step {info['step']}, epoch {info['epoch']}, "
                  f"p2p {plain(info['p2p_version'])}{source}")
    table = Table("kind", "name", "plugin", "version")
    for c in info["components"]:
        table.add_row(*(plain(c[key]) for key in ("kind", "name", "distribution", "version")))
    console.print(table)
    table = Table("network", "parameters")
    for role, count in info["parameters"].items():
        table.add_row(plain(role), f"{count:,}")
    console.print(table)
    console.print(f"resume state: {'yes' if info['resumable'] else 'no (weights only)'}")
    console.print(f"translate: {plain(info['translate'])}")
    if recipe:
        console.print(plain(tomli_w.dumps(info["recipe"]), lines=True), highlight=False)
    else:
        console.print(f"recipe: {plain(info['recipe'].get('name', ''))} (task {plain(info['recipe'].get('task'))}); "
                      "--recipe prints it", highlight=False)
