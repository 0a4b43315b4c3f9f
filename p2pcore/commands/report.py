"""`p2p report RUN_DIR`: a run's HTML report, written beside its log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pcore.commands import common
from p2pcore.commands.common import console, plain


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(run_dir: Annotated[Path, typer.Argument(help="a run directory (runs/<name>, or p2p run's --out)")]) -> None:
    """Write RUN_DIR/report.html: curves, sample grids by epoch, metrics, recipe and component versions.

    Example:
    p2p report runs/quickstart
    """
    from p2pcore.report import write_report

    console.print(f"wrote {plain(str(write_report(run_dir, common.host())))}", highlight=False)
