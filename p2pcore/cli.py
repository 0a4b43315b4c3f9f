"""The `p2p` command: the typer app, the core's commands (p2pcore.commands), the plugins' commands (the
`p2p_add_commands` hook), `--version`, one-line warnings and one-screen errors. Torch is imported only inside the
commands that train or run networks.

A usage mistake (a missing argument, an unknown option, a bad choice) becomes a P2PError, so it is shown as p2p's
one-screen error with exit code 2 like every other error, not as typer's box. Help texts, the plugins' too, are
written as plain prose: before the help is shown, their square brackets are escaped (typer would read
`[translate]` as rich markup and drop it) and the line breaks inside a paragraph are joined (typer keeps them in a
command's later paragraphs and in the list of commands). A command's example, a help paragraph that starts with
"Example", is shown below its options with its lines kept.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from p2pcore.commands import common, register_all
from p2pcore.commands.common import errors, plain, render_error
from p2pcore.commands.run import LAUNCHER
from p2pcore.errors import P2PError

try:  # recent typer carries its own copy of click
    from typer._click import Command, Context
    from typer._click.exceptions import NoSuchOption, UsageError
except ImportError:  # pragma: no cover - older typer
    from click import Command, Context
    from click.exceptions import NoSuchOption, UsageError


class P2PGroup(TyperGroup):
    """The top-level group: usage errors as P2PErrors, help texts tidied once before the first parse."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        for command in walk(self):
            tidy_help(command)
        return super().main(args, prog_name, complete_var, standalone_mode, **extra)

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as error:
            raise usage_problem(error) from None

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as error:
            raise usage_problem(error) from None


def walk(command: Command) -> Iterator[Command]:
    """A command and every command below it."""
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from walk(sub)


def prose(text: str) -> str:
    """A help text as typer should print it: markup escaped, each paragraph one line (a paragraph that starts
    with `\\b` keeps its lines, as click's convention says)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(escape(p if p.startswith("\b") else " ".join(p.split("\n"))) for p in paragraphs)


def tidy_help(command: Command) -> None:
    """Make a command's help, its example and its parameters' help print as written (once per command). A
    paragraph of the help that starts with "Example" moves below the options, as the epilog, keeping its
    lines: that is where every p2p command shows a command line to start from."""
    if getattr(command, "_p2p_tidy", False):
        return
    command._p2p_tidy = True  # type: ignore[attr-defined]
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        examples = [p for p in paragraphs if p.startswith("Example")]
        command.help = prose("\n\n".join(p for p in paragraphs if p not in examples))
        if examples and not command.epilog:
            command.epilog = "\n\n".join(examples)
    if command.short_help:
        command.short_help = prose(command.short_help)
    if command.epilog:
        command.epilog = escape(inspect.cleandoc(command.epilog))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = prose(param.help)  # type: ignore[attr-defined]


def usage_problem(error: UsageError) -> P2PError | UsageError:
    """A click usage error as a P2PError: its message in p2p's style, the usage line, and where to look."""
    if type(error).__name__ == "NoArgsIsHelpError":  # `p2p` alone: the help has been printed
        return error
    message = error.message if isinstance(error, NoSuchOption) else error.format_message()
    message, _, suggestion = message.rstrip(".").replace(": Value error, ", ": ").partition(". Did you mean ")
    suggestion = suggestion.rstrip("?")
    if isinstance(error, NoSuchOption) and error.possibilities:
        suggestion = " or ".join(sorted(set(error.possibilities) - {"--help"}))
    hint = f"did you mean {suggestion}? " if suggestion else ""
    details: list[str] = []
    ctx = error.ctx
    if ctx is not None:
        usage = " ".join(ctx.get_usage().split())
        details.append("usage: " + usage.removeprefix("Usage: "))
        hint += f"`{ctx.command_path} --help` shows every argument and option, with an example"
    return P2PError(message[:1].lower() + message[1:], details=details, hint=hint or None)


def make_app() -> typer.Typer:
    """The `p2p` app with the core's commands and `--version` (`main` adds the plugins' commands)."""
    made = typer.Typer(cls=P2PGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                       help="Image-to-image translation with conditional adversarial networks.",
                       epilog="Example:\np2p run recipes/quickstart.toml\n(and p2p COMMAND --help: each command's "
                              "options, with an example)")
    made.callback()(_options)
    register_all(made)
    return made


def version_text() -> str:
    """p2p's version, and torch's only when something has imported it already (`--version` stays instant)."""
    from p2pcore.version import __version__

    text = f"p2p {__version__} (Python {sys.version.split()[0]})"
    torch = sys.modules.get("torch")
    return text + (f", torch {torch.__version__}" if torch is not None else "")


def _show_version(value: bool) -> None:
    if value:
        common.console.print(version_text(), highlight=False)
        raise typer.Exit()


def _options(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_show_version,
                                                   help="print p2p's version and exit")] = False) -> None:
    pass


app = make_app()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """User-facing warnings (a skipped corrupt file, a resume from an older checkpoint) as one plain line."""
    errors.print(f"[yellow]warning[/yellow]: {plain(message, lines=True)}")


def main() -> None:
    import warnings

    warnings.showwarning = _show_warning
    try:
        common.host().manager.hook.p2p_add_commands(app=app)
        app()
    except P2PError as error:
        render_error(error)
        _end(2)
    except SystemExit as done:
        _end(done.code)
    _end(0)


def _end(code: Any) -> None:
    """Exit with `code`. A process `p2p run --nproc` started leaves without the interpreter's teardown: its work
    and files are done and flushed, and tearing down the communication threads at exit can abort it."""
    code = code if isinstance(code, int) else 0 if code is None else 1
    if os.environ.get(LAUNCHER):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
