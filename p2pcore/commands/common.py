"""What every command shares, declared once: the `--set`, `--json`, `--protocol`, test-time size and tiling options, the
one plugin host per process (honouring P2P_STRICT_PLUGINS), the consoles, `plain` for text that comes from files,
error rendering and recipe loading with overrides.

Torch-free, and the host and the recipe code are imported when first needed, so `p2p --help` stays fast.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

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

# tiled translation, shared by translate and eval (p2pcore.engine.infer.tiling)
TILE_HELP = ("translate images larger than SIZE x SIZE as overlapping tiles blended together: memory bounded by the "
             "tile; SIZE a multiple of the generator's size multiple")
TileOption = Annotated[int | None, typer.Option(help=TILE_HELP, metavar="SIZE")]
OverlapOption = Annotated[int | None, typer.Option(help="with --tile: at least PX pixels shared by neighbouring "
                                                        "tiles, less than SIZE/2 (default SIZE/8)", metavar="PX")]

# the test-time protocol, one switch for translate, eval and export (p2pcore.engine.infer.protocols)
ProtocolOption = Annotated[Literal["paper", "eval"], typer.Option(
    "--protocol", help="paper (the default): dropout drawing and each batch's own statistics at test time, as "
    "the pix2pix paper does; eval: dropout off and batch-norm running statistics (deterministic)")]


def renamed(older: str, now: str) -> None:
    """Say that option `older` is now written `now`: the older spelling is still accepted, hidden from the help,
    so that command lines written before keep working while the help shows one name for each switch."""
    import warnings

    warnings.warn(f"{older} is now written {now}", FutureWarning, stacklevel=3)


def protocol_of(protocol: str, older_spelling: bool, name: str) -> str:
    """The `--protocol` asked for; `name` (translate's `--eval`, eval's `--eval-protocol`) is the older spelling
    of `--protocol eval`."""
    if older_spelling:
        renamed(name, "--protocol eval")
        return "eval"
    return protocol

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


# control characters (C0, DEL, C1) and the Unicode marks that reorder the text around them
_CONTROLS = [*range(0x20), *range(0x7F, 0xA0), 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_SHOWN = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _CONTROLS} | {
    0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_SHOWN_WITH_LINES = {code: shown for code, shown in _SHOWN.items() if code not in (0x09, 0x0A)}


def plain(text: object, *, lines: bool = False) -> str:
    """Text that comes from a file (a checkpoint's names and recipe, a file name, an error about either), made
    safe to print: every control character is written out (an escape sequence shows as `\\x1b[2J` instead of
    clearing the screen, a bell as `\\x07`) and rich markup is escaped (`[bold]` shows as typed). With `lines`,
    line breaks and tabs are kept."""
    return escape(str(text).translate(_SHOWN_WITH_LINES if lines else _SHOWN))


def render_error(error: P2PError) -> None:
    """A P2PError as one screen on stderr: the message, then the file, key, details and hint it carries."""
    errors.print(f"[bold red]error[/bold red]: {plain(error.message, lines=True)}")
    if error.file:
        errors.print(f"  file: {plain(error.file)}")
    if error.key:
        errors.print(f"  key:  {plain(error.key)}")
    for line in error.details[:20]:
        errors.print(f"  - {plain(line, lines=True)}")
    if error.hint:
        errors.print(f"  [cyan]hint[/cyan]: {plain(error.hint, lines=True)}")
