"""`p2p data check`: scan the dataset a recipe names, without training.

Torch is imported inside the command (building an adapter may import it), so `p2p --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from p2pcore.commands import common
from p2pcore.commands.common import JsonOption, SetOption, console, plain

data_app = typer.Typer(no_args_is_help=True, help="Inspect the dataset a recipe names.\n\n"
                                                  "Example:\np2p data check recipes/quickstart.toml")

SHOWN_PROBLEMS = 20
SHOWN_WARNINGS = 8


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _report_dict(report: Any) -> dict[str, Any]:
    return {"adapter": getattr(report, "adapter", ""), "split": getattr(report, "split", ""),
            "root": getattr(report, "root", ""), "pairs": report.pairs, "ok": report.ok,
            "problems": list(report.problems), "warnings": list(report.warnings),
            "facts": dict(getattr(report, "facts", {}))}


def _print_report(report: Any, recipe: Path, deep: bool) -> None:
    status = "[green]ok[/green]" if report.ok else f"[red]{len(report.problems)} problem(s)[/red]"
    table = Table(title=f"{plain(str(recipe))}: data check ({'full decode' if deep else 'headers'})",
                  show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    info = _report_dict(report)
    rows = [("adapter", info["adapter"]), ("split", info["split"]), ("root", info["root"]),
            ("pairs", str(info["pairs"])), *info["facts"].items()]
    for key, value in rows:
        if value != "":
            table.add_row(plain(str(key)), plain(str(value)))
    table.add_row("status", status)
    console.print(table)
    for title, lines, shown, style in (("problems", report.problems, SHOWN_PROBLEMS, "red"),
                                       ("warnings", report.warnings, SHOWN_WARNINGS, "yellow")):
        if not lines:
            continue
        console.print(f"[{style}]{title}[/{style}]:")
        for line in lines[:shown]:
            console.print(f"  - {plain(line)}")
        if len(lines) > shown:
            console.print(f"  ... and {len(lines) - shown} more ({title} listed with --json)")
    if not report.ok:
        console.print("[cyan]hint[/cyan]: fix or remove the files named above"
                      + ("" if deep else "; --deep also decodes every image"))


@data_app.command("check")
def check(recipe: Annotated[Path, typer.Argument(help="recipe TOML file")],
          split: Annotated[str, typer.Option(help="train or test")] = "train",
          deep: Annotated[bool, typer.Option("--deep", help="decode every image, not only the headers")] = False,
          set_: SetOption = None,
          as_json: JsonOption = False) -> None:
    """Count pairs and list unmatched, unreadable, mismatched or unexpected files; exit 2 on problems.

    Example:
    p2p data check recipes/quickstart.toml --deep
    """
    host = common.host()
    parsed = common.load_recipe(recipe, set_, host)
    adapter = host.build("dataset", parsed.data, key="data")
    scan = getattr(adapter, "check", None)
    if scan is None:
        typer.echo(f"dataset {parsed.data.name!r} offers no check")
        return
    report = scan(split, deep=deep)
    if as_json:
        typer.echo(json.dumps(_report_dict(report), indent=2))
    else:
        _print_report(report, recipe, deep)
    if not report.ok:
        raise typer.Exit(2)
