"""`p2p list [KIND] [PATTERN]` and `p2p show KIND NAME`: the registered components and their parameters.
The kinds they name come from the table of kinds (p2pcore.kinds); nothing here imports torch."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from p2pcore.commands import common
from p2pcore.commands.common import JsonOption, console
from p2pcore.kinds import KINDS

KIND_HELP = ", ".join(KINDS)  # the kinds, in the order listings show them


def register(app: typer.Typer) -> None:
    app.command("list")(list_)
    app.command("show")(show)


def list_(kind: Annotated[str | None, typer.Argument(help=KIND_HELP)] = None,
          pattern: Annotated[str | None, typer.Argument(help="wildcard on names, e.g. '*unet*'")] = None,
          as_json: JsonOption = False) -> None:
    """Registered components, by kind, optionally matching a name pattern.

    Example:
    p2p list generator
    p2p list norm "*inst*"
    """
    host = common.host()
    specs = host.registry.search(kind, pattern)
    ambiguous = {(s.kind, s.name) for s in specs
                 if sum(o.name == s.name for o in host.registry.specs(s.kind)) > 1}
    rows = [{"kind": s.kind, "name": s.qualified_name if (s.kind, s.name) in ambiguous else s.name,
             "aliases": list(s.aliases), "plugin": s.distribution,
             "version": s.version, "summary": s.summary} for s in specs]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print(f"no {kind or 'component'} matches {pattern!r}" if pattern else f"no {kind} is registered")
        return
    table = Table("kind", "name", "plugin", "summary")
    for row in rows:
        alias = f" ({', '.join(row['aliases'])})" if row["aliases"] else ""
        table.add_row(row["kind"], row["name"] + alias, f"{row['plugin']} {row['version']}", escape(row["summary"]))
    console.print(table)


def show(kind: Annotated[str, typer.Argument(help=KIND_HELP)],
         name: Annotated[str, typer.Argument(help="component name")]) -> None:
    """A component's parameters: types, defaults and descriptions.

    Example:
    p2p show generator unet
    """
    from p2pcore.schema import describe_params, fact_text

    spec = common.host().registry.get(kind, name)
    console.print(f"[bold]{spec.kind} {spec.name}[/bold] from {spec.distribution} {spec.version}"
                  + (f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""))
    if spec.summary:
        console.print(escape(spec.summary))
    if spec.kind == "task":
        _show_task(spec.params().declare())
    if spec.kind == "metric":
        _show_metric(spec.name, spec.params)
    rows = describe_params(spec.params)
    if not rows:
        console.print("no parameters")
        return
    table = Table("parameter", "type", "default", "description")
    for row in rows:
        table.add_row(*(escape(row[k]) for k in ("name", "type", "default", "description")))
    console.print(table)
    for fact, value in spec.describe_defaults().items():
        console.print(f"{fact}: {escape(fact_text(value))}")


def _show_task(declared: Any) -> None:
    """What a recipe wires to a task: its roles, players, tensors and directions (defaults), and the networks it
    builds itself (never a model table)."""
    table = Table("role (a model table)", "kind", "required", "player", "description")
    player_of = {r: name for name, player in declared.players.items() for r in player.roles}
    for role, r in declared.roles.items():
        table.add_row(role, r.kind, "yes" if r.required else "no", player_of.get(role, ""), escape(r.summary))
    console.print(table)
    if declared.own:
        own = Table("own network (built by the task)", "player", "translation", "description")
        for name, network in declared.own.items():
            own.add_row(name, network.player, "yes" if network.translation else "no", escape(network.summary))
        console.print(own)
    console.print("tensors for loss terms: " + ", ".join(
        f"{name}" + (f" (needs {', '.join(needs)})" if needs else "") for name, needs in declared.tensors.items()),
        highlight=False)
    console.print("directions: " + ", ".join(f"{name} ({d.input} -> {d.output})" for name, d in
                                              declared.directions.items()), highlight=False)


def _show_metric(name: str, params_type: Any) -> None:
    """The figures a metric computes with its default parameters (`MetricParams.figures`), logged as
    ``eval/<figure>``, and which way is better for each."""
    try:
        figures = params_type().figures()
    except Exception:  # a required parameter: ask without validating, as most metrics' figures are fixed
        try:
            figures = params_type.model_construct().figures()
        except Exception:
            console.print("figures: depend on the parameters a recipe gives")
            return
    table = Table("figure (eval/...)", "better")
    for part, higher in figures.items():
        table.add_row(escape(f"{name}/{part}" if part else name), "higher" if higher else "lower")
    console.print(table)
