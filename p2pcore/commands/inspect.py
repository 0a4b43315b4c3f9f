"""`p2p inspect CHECKPOINT`: what a checkpoint holds, as tables or JSON, read without building its networks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from p2pcore.commands.common import JsonOption, console


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)


def inspect(checkpoint: Annotated[Path, typer.Argument(help="a p2p checkpoint (.safetensors)")],
            as_json: JsonOption = False) -> None:
    """What a checkpoint holds: recipe, components and versions, step, epoch, parameter counts."""
    import tomli_w

    from p2pcore.inspect import summarize

    info = summarize(checkpoint)
    if as_json:
        console.print_json(json.dumps(info))
        return
    console.print(f"[bold]{checkpoint}[/bold]: step {info['step']}, epoch {info['epoch']}, "
                  f"p2p {info['p2p_version']}" + (f", from {info['source']}" if info.get("source") else ""))
    table = Table("kind", "name", "plugin", "version")
    for c in info["components"]:
        table.add_row(c["kind"], c["name"], c["distribution"], c["version"])
    console.print(table)
    table = Table("network", "parameters")
    for role, count in info["parameters"].items():
        table.add_row(role, f"{count:,}")
    console.print(table)
    console.print(f"resume state: {'yes' if info['resumable'] else 'no (weights only)'}")
    console.print(f"translate: {info['translate']}")
    console.print(escape(tomli_w.dumps(info["recipe"])), highlight=False)
