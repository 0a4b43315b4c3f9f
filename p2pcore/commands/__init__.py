"""The core's sub-commands of `p2p`: each a module of this package with `register(app)`, which adds its command
(or group) to the typer app. Plugins add theirs through the `p2p_add_commands` hook instead.

`COMMAND_MODULES` is the one list of them, in the order `p2p --help` shows them (groups come after commands);
`common` holds what they share.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES: tuple[str, ...] = ("run", "translate", "inspect", "report", "export", "plugins", "components",
                                    "validate", "schema", "evaluate", "study", "docs", "bench", "data", "scaffold")


def register_all(app: typer.Typer) -> None:
    """Add every core command to `app`, in help order."""
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app)
