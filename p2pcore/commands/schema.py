"""`p2p schema`: the JSON Schema of recipes with the installed components' parameters, for editors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from p2pcore.atomicfile import write_text_atomically
from p2pcore.commands import common
from p2pcore.commands.common import console, plain, renamed
from p2pcore.errors import P2PError


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)


def schema(out: Annotated[Path | None, typer.Option("--out", "-o", help="write it to this file (by default it is "
                                                     "printed)")] = None,
           output: Annotated[Path | None, typer.Option("--output", hidden=True)] = None) -> None:
    """JSON Schema of recipes, with the installed components' parameters, for editors.

    Example:
    p2p schema --out recipe.schema.json
    """
    from p2pcore.schema import recipe_schema

    if output is not None:
        renamed("--output", "--out")
        out = out or output
    output = out

    text = json.dumps(recipe_schema(common.host()), indent=2)
    if not output:
        sys.stdout.write(text + "\n")
        return
    if output.is_dir():
        raise P2PError("the output is a folder", file=str(output), hint="give a file path, e.g. recipe.schema.json")
    write_text_atomically(output, text + "\n", what="the schema")
    console.print(f"wrote {plain(output)}")
