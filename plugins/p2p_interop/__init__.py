"""Built-in `p2p import`: networks trained with other implementations (the pix2pix/CycleGAN and pix2pixHD
reference code) become p2p checkpoints. A plugin like any third party's: it adds its commands through the
`p2p_add_commands` hook and reaches the core only through `p2pcore.api`. Torch is imported when a command runs."""

from __future__ import annotations

from typing import Any

from p2pcore.api import hookimpl

P2P_API = ">=1,<2"  # the plugin API versions this plugin supports: p2pcore.api.API_VERSION


@hookimpl
def p2p_add_commands(app: Any) -> None:
    from p2p_interop.commands import import_app

    app.add_typer(import_app, name="import")
