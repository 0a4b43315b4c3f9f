"""What every command shares, declared once: the `--set` and `--json` options, the one plugin host per process
(honouring P2P_STRICT_PLUGINS), the consoles, error rendering and recipe loading with overrides.

Torch-free, and the host and the recipe code are imported when first needed, so `p2p --help` stays fast.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from p2pcore.errors import P2PError

if TYPE_CHECKING:
    from p2pcore.plugins import Host
    from p2pcore.recipe import Recipe

SetOption = Annotated[list[str] | None, typer.Option("--set", help="override a recipe key: key.path=value")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
# test-time sizes, shared by translate and eval (p2pcore.engine.infer.sizing)
LoadSizeOption = Annotated[int | None, typer.Option(
    "--load-size", min=1, metavar="N", help="give the generator each image resized to N x N (as the reference "
    "test: load_size = crop_size); N a multiple of the generator's size multiple")]
ScaleWidthOption = Annotated[int | None, typer.Option(
    "--scale-width", min=1, metavar="W", help="give the generator each image resized to width W, aspect kept "
    "(the height rounded to the size multiple); W a multiple of the generator's size multiple")]
KeepModelSizeOption = Annotated[bool, typer.Option(
    "--keep-model-size", help="with --load-size or --scale-width: keep outputs at the model's size; by default "
    "they are resized back to each input's size (bicubic for images, nearest for label maps)")]

console = Console()
errors = Console(stderr=True, soft_wrap=True)


@functools.cache
def host() -> Host:
    """The plugin host, loaded once per process; P2P_STRICT_PLUGINS (not 0) turns a failed plugin into an error."""
    from p2pcore.plugins import load_host

    return load_host(strict=os.environ.get("P2P_STRICT_PLUGINS", "") not in ("", "0"))


def load_recipe(path: Path, overrides: list[str] | None, host: Host) -> Recipe:
    """A recipe file with its `extends` merged and the `--set` overrides applied, validated against `host`."""
    from p2pcore.recipe import load_recipe as load

    return load(path, host, overrides or ())


def render_error(error: P2PError) -> None:
    """A P2PError as one screen on stderr: the message, then the file, key, details and hint it carries."""
    errors.print(f"[bold red]error[/bold red]: {escape(error.message)}")
    if error.file:
        errors.print(f"  file: {escape(error.file)}")
    if error.key:
        errors.print(f"  key:  {escape(error.key)}")
    for line in error.details[:20]:
        errors.print(f"  - {escape(line)}")
    if error.hint:
        errors.print(f"  [cyan]hint[/cyan]: {escape(error.hint)}")
