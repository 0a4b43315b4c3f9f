"""`p2p new plugin NAME`: scaffold a plugin package (torch-free until it runs the template's checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pcore.commands.common import console
from p2pcore.kinds import NAMES

KIND_HELP = f"{', '.join(NAMES[:-1])} or {NAMES[-1]}"  # every kind of the table has a template

new_app = typer.Typer(no_args_is_help=True, help="Start a new project from a template.\n\n"
                                                 "Example:\np2p new plugin p2p-sharpen --kind norm")


def register(app: typer.Typer) -> None:
    app.add_typer(new_app, name="new")


@new_app.command("plugin")
def plugin(name: Annotated[str, typer.Argument(help="distribution name, e.g. p2p-sharpen (module p2p_sharpen)")],
           kind: Annotated[str, typer.Option(help=KIND_HELP)] = "generator",
           directory: Annotated[Path, typer.Option("--dir", help="folder to create NAME/ in")] = Path(".")) -> None:
    """A plugin package NAME/ registering one working component of a kind, with its contract test.

    Example:
    p2p new plugin p2p-sharpen --kind norm
    """
    from p2pcore.scaffold import scaffold_plugin

    target = scaffold_plugin(name, kind, directory)
    console.print(f"[green]created[/green] {target}: cd {target} && pip install -e '.[test]' && pytest",
                  highlight=False)
