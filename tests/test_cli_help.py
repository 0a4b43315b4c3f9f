"""Help and usage errors: every built-in command's --help shows its texts as written and ends with an example that
parses; one name for each switch; `p2p --version` without torch; typer's usage errors in p2p's one-screen style."""

from __future__ import annotations

import inspect
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from conftest import run_without_torch
from typer.testing import CliRunner

from p2pcore.cli import make_app
from p2pcore.version import __version__

ROOT = Path(__file__).resolve().parents[1]
BUILT_IN = {"p2pcore"} | {p.name for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name.startswith("p2p_")}


@pytest.fixture(scope="module")
def app(host) -> typer.Typer:
    """The app as `p2p` runs it: the core's commands and the installed plugins' (`main` adds them the same way)."""
    made = make_app()
    host.manager.hook.p2p_add_commands(app=made)
    return made


def built_in(command) -> bool:
    """A command of p2pcore or a plugin shipped with it (a group: when all its commands are)."""
    if getattr(command, "commands", None):
        return all(built_in(c) for c in command.commands.values())
    return command.callback.__module__.split(".")[0] in BUILT_IN


def commands(app: typer.Typer) -> dict[str, object]:
    """Every built-in command and group below `p2p`, by its command path ("p2p data check"), untidied."""
    found: dict[str, object] = {}

    def walk(command, path: str) -> None:
        found[path] = command
        for name, sub in (getattr(command, "commands", None) or {}).items():
            if built_in(sub):
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "p2p")
    return found


def paragraphs(text: str | None) -> list[str]:
    """A help text's paragraphs, each on one line, as the help should print them (examples aside)."""
    parts = inspect.cleandoc(text or "").split("\n\n")
    return [" ".join(p.split("\n")) for p in parts if p and not p.startswith("Example")]


def show_help(app: typer.Typer, path: str) -> str:
    result = CliRunner().invoke(app, [*path.split()[1:], "--help"], env={"COLUMNS": "3000"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_shows_its_texts_as_written_without_double_spaces(app):
    found = commands(app)
    assert {"p2p run", "p2p translate", "p2p eval", "p2p data check", "p2p cluster", "p2p import junyanz"} <= set(found)
    for path, command in found.items():
        texts = paragraphs(command.help) + [t for p in command.params for t in paragraphs(getattr(p, "help", ""))]
        shown = show_help(app, path)
        for text in texts:
            assert "  " not in text, (path, text)
            assert text in shown, (path, text)  # no bracketed word taken for markup, no line broken in two
    assert "the recipe's [translate]" in show_help(app, "p2p translate")


def test_every_command_ends_its_help_with_an_example_that_parses(app):
    for path in commands(app):
        shown = show_help(app, path)
        assert "Example" in shown.split("Options")[-1], path  # below the options
        examples = [line.strip() for line in shown.splitlines() if line.strip().startswith(f"{path} ")
                    or line.strip() == path]
        assert examples, f"{path}: no example command line"
        for line in examples:
            tokens = shlex.split(line)[1:]
            target = typer.main.get_command(app)
            while getattr(target, "commands", None) and tokens and tokens[0] in target.commands:
                target, tokens = target.commands[tokens[0]], tokens[1:]
            if getattr(target, "commands", None):
                continue  # `p2p run ...` shown by the top level is checked as `p2p run`'s own
            target.make_context(line.split()[0], tokens)  # a wrong option or a missing argument raises


def test_one_name_for_each_switch(app):
    """A switch means the same across commands: --protocol (never --eval or --eval-protocol), --device with
    auto first, --json a flag, --out where a file or folder is written."""
    found = commands(app)
    for path, command in found.items():
        for param in command.params:
            names = [*param.opts, *param.secondary_opts]
            if getattr(param, "hidden", False):
                continue
            assert not {"--eval", "--eval-protocol", "--output"} & set(names), (path, names)
            if "--device" in names:
                assert param.default == "auto", (path, param.default)
            if "--json" in names:
                assert param.is_flag, path
    for path in ("p2p translate", "p2p eval"):  # its choices: test_usage_errors_are_one_screen_p2p_errors
        assert next(p for p in found[path].params if "--protocol" in p.opts).default == "paper"


def test_version_is_instant_and_torch_free():
    done = run_without_torch(["--version"])
    assert done.returncode == 0, done.stderr
    assert f"p2p {__version__}" in done.stdout and "torch" not in done.stdout


def p2p(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "100"}, timeout=120)


@pytest.mark.parametrize("args, says", [
    (["translate", "a.safetensors"], "error: missing argument 'input'"),
    (["translate", "a.safetensors", "b", "c", "--evl"], "error: no such option: --evl"),
    (["translate", "a.safetensors", "b", "c", "--protocol", "exact"], "'exact' is not one of 'paper', 'eval'"),
    (["eval", "a.safetensors", "--max-items", "some"], "error: invalid value for '--max-items'"),
    (["trnslate"], "error: no such command 'trnslate'"),
    (["data", "check"], "error: missing argument"),
], ids=["missing argument", "unknown option", "bad choice", "not a number", "unknown command", "in a group"])
def test_usage_errors_are_one_screen_p2p_errors(args, says):
    done = p2p(*args)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr, done.stderr
    assert done.stderr.startswith("error: ") and "usage: " in done.stderr and "--help" in done.stderr
    assert not set("╭╮╰╯│") & set(done.stderr) and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) <= 4


def test_a_close_misspelling_is_suggested():
    assert "did you mean --device" in p2p("translate", "a", "b", "c", "--devise", "cpu").stderr
    assert "did you mean 'translate'" in p2p("trnslate").stderr


def test_older_spellings_still_work_with_a_warning(tmp_path):
    done = p2p("schema", "--output", str(tmp_path / "s.json"))
    assert done.returncode == 0 and (tmp_path / "s.json").is_file()
    assert "warning: --output is now written --out" in done.stderr
