"""`p2p plugins`: every plugin the host found, its version and status, and what it registered."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from p2pcore.commands import common
from p2pcore.commands.common import JsonOption, console


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)


def plugins(as_json: JsonOption = False) -> None:
    """Installed plugins, their versions and what they registered (or why they failed).

    Example:
    p2p plugins
    """
    host = common.host()
    if as_json:
        console.print_json(json.dumps([vars(r) | {"components": list(r.components)} for r in host.records]))
        return
    from p2pcore.compat import offered

    table = Table("plugin", "distribution", "version", "status", "components", caption=offered())
    for r in host.records:
        style = {"ok": "green", "incompatible": "yellow"}.get(r.status, "red")
        note = escape(r.error) if r.error else f"[yellow]warning[/yellow]: {escape(r.warning)}" if r.warning else ""
        status = f"[{style}]{r.status}[/{style}]" + (f": {note}" if note else "")
        table.add_row(r.name, r.distribution, r.version, status, escape(", ".join(r.components)))
    console.print(table)
