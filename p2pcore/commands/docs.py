"""`p2p docs`: write the reference pages generated from the code (docs/recipes.md, docs/hooks.md), or check
that the committed ones are current. Imports no torch: the registry and the hook specifications are enough."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pcore.atomicfile import write_text_atomically
from p2pcore.commands import common
from p2pcore.commands.common import console


def register(app: typer.Typer) -> None:
    app.command("docs")(docs)


def docs(out: Annotated[Path, typer.Option("--out", help="the folder of the pages")] = Path("docs"),
         check: Annotated[bool, typer.Option("--check", help="write nothing; exit 1 when a page is missing or "
                                                        "differs from what the code generates")] = False) -> None:
    """Generate recipes.md (every section's keys, every built-in component's parameters) and hooks.md (every
    plugin hook) from the code.

    Example:
    p2p docs --check
    """
    from p2pcore.docgen import pages, stale

    generated = pages(common.host())
    outdated = stale(out, generated)
    if check:
        for name in outdated:
            console.print(f"[red]stale[/red]: {out / name}", highlight=False, soft_wrap=True)  # a path stays whole
        if outdated:
            console.print(f"regenerate them: p2p docs --out {out}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        console.print(f"[green]current[/green]: {', '.join(str(out / name) for name in generated)}", highlight=False)
        return
    for name in outdated:
        write_text_atomically(out / name, generated[name], what="the page", hint="choose a writable folder with --out")
    console.print(f"wrote {', '.join(str(out / name) for name in outdated) or 'nothing (all current)'}",
                  highlight=False)
