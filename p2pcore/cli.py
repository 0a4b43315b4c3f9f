"""The `p2p` command: the typer app, the core's commands (p2pcore.commands), the plugins' commands (the
`p2p_add_commands` hook), one-line warnings and one-screen errors. Torch is imported only inside the commands
that train or run networks."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from p2pcore.commands import common, register_all
from p2pcore.commands.common import errors, render_error
from p2pcore.errors import P2PError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Image-to-image translation with conditional adversarial networks.")
register_all(app)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """User-facing warnings (a skipped corrupt file, a resume from an older checkpoint) as one plain line."""
    errors.print(f"[yellow]warning[/yellow]: {escape(str(message))}")


def main() -> None:
    import warnings

    warnings.showwarning = _show_warning
    try:
        common.host().manager.hook.p2p_add_commands(app=app)
        app()
    except P2PError as error:
        render_error(error)
        raise SystemExit(2) from None
