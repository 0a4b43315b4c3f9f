"""The command line: torch-free commands, one-screen errors with exit code 2, JSON outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_without_torch
from typer.testing import CliRunner

from p2pcore.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def p2p(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"})


TORCH_FREE = [
    ["--help"], ["plugins"], ["plugins", "--json"], ["list"], ["list", "generator", "*unet*", "--json"],
    ["show", "generator", "unet"], ["show", "discriminator", "patch"], ["validate", "recipes/quickstart.toml"],
    ["schema"],
]


@pytest.mark.parametrize("args", TORCH_FREE, ids=lambda a: " ".join(a))
def test_commands_do_not_import_torch(args):
    done = run_without_torch(args)
    assert done.returncode == 0, done.stderr[-2000:]


def test_list_json_and_show(host):
    result = runner.invoke(app, ["list", "norm", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {row["name"] for row in rows if row["plugin"] == "p2pcore"} == {"batch", "syncbatch", "instance", "none"}
    result = runner.invoke(app, ["show", "generator", "unet"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "depth" in result.stdout and "ngf" in result.stdout


def test_plugins_json_lists_builtins():
    done = p2p("plugins", "--json")
    assert done.returncode == 0, done.stderr
    records = {r["name"]: r for r in json.loads(done.stdout)}
    assert records["generators"]["ok"] and "generator:unet" in records["generators"]["components"]


def test_schema_lists_components():
    done = p2p("schema")
    schema = json.loads(done.stdout)
    titles = {entry["title"] for entry in schema["properties"]["model"]["additionalProperties"]["anyOf"]}
    assert "generator unet" in titles and "discriminator patch" in titles


def test_bad_recipe_gives_one_screen_error_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\nname = "synthetic_thermal"\n[model.generator]\nname = "unet"\nnorm = "btach"\n')
    done = p2p("validate", str(bad))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert str(bad) in done.stderr and "model.generator.norm.name" in done.stderr
    assert "did you mean 'batch'" in done.stderr
    assert len(done.stderr.splitlines()) <= 10


def test_missing_recipe_and_bad_set(tmp_path):
    done = p2p("validate", str(tmp_path / "nope.toml"))
    assert done.returncode == 2 and "recipe file not found" in done.stderr
    done = p2p("validate", "recipes/quickstart.toml", "--set", "train.epochs")
    assert done.returncode == 2 and "key.path=value" in done.stderr


def test_unknown_kind():
    done = p2p("list", "generatr")
    assert done.returncode == 2 and "did you mean 'generator'" in done.stderr


def test_a_broken_installed_plugin_is_reported_and_the_rest_work(tmp_path):
    """A real entry point whose module fails to import: `p2p plugins` says so, everything else works."""
    dist = tmp_path / "p2p_broken-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: p2p-broken\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[p2p.plugins]\nbroken = p2p_broken_mod\n")
    (tmp_path / "p2p_broken_mod.py").write_text("import a_module_that_does_not_exist\n")
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "p2pcore", "plugins", "--json"], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    records = {r["name"]: r for r in json.loads(done.stdout)}
    assert not records["broken"]["ok"] and "a_module_that_does_not_exist" in records["broken"]["error"]
    assert records["broken"]["distribution"] == "p2p-broken" and records["generators"]["ok"]
    done = subprocess.run([sys.executable, "-m", "p2pcore", "validate", "recipes/quickstart.toml"],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "p2pcore", "list"], capture_output=True, text=True, cwd=ROOT,
                          env={**env, "P2P_STRICT_PLUGINS": "1"})
    assert done.returncode == 2 and "p2p-broken" in done.stderr and "Traceback" not in done.stderr


def test_show_task_lists_what_a_recipe_wires():
    result = runner.invoke(app, ["show", "task", "cyclegan"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "generator_ab" in result.stdout and "discriminator_a" in result.stdout
    assert "rec_a (needs generator_ab, generator_ba)" in result.stdout and "b2a (b -> a)" in result.stdout


def test_show_metric_lists_its_figures_and_which_way_is_better():
    result = runner.invoke(app, ["show", "metric", "psnr"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "psnr " in result.stdout and "higher" in result.stdout
    result = runner.invoke(app, ["show", "metric", "fcn_score"], env={"COLUMNS": "200"})  # a required parameter
    assert result.exit_code == 0 and "fcn_score/real/iou" in result.stdout


@pytest.mark.parametrize(("name", "args", "fmt"), [("g.pt", [], "torchscript"), ("g.onnx", [], "onnx"),
                                                   ("g.bin", [], "onnx"), ("g.pt", ["--format", "onnx"], "onnx")])
def test_export_takes_its_format_from_the_output_suffix(monkeypatch, tmp_path, name, args, fmt):
    seen = {}

    def fake_export(checkpoint, output, host, format_, direction, protocol):
        seen["format"] = format_
        return {"direction": "a2b", "in_channels": 3, "out_channels": 3, "size_multiple": 1}

    monkeypatch.setattr("p2pcore.engine.infer.export.export", fake_export)
    result = runner.invoke(app, ["export", str(tmp_path / "c.safetensors"), str(tmp_path / name), *args])
    assert result.exit_code == 0, result.output
    assert seen["format"] == fmt


def test_export_without_onnx_says_how_to_install_it(monkeypatch, tmp_path):
    import importlib.util

    from p2pcore.errors import P2PError

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else find_spec(name, *a))
    result = runner.invoke(app, ["export", str(tmp_path / "c.safetensors"), str(tmp_path / "g.onnx")])
    error = result.exception  # the P2PError the command line shows on one screen, exit 2
    assert isinstance(error, P2PError) and "onnx package" in error.message, result.output
    assert "pip install onnx onnxscript" in error.hint and "--format torchscript" in error.hint


def test_list_shows_qualified_names_where_two_plugins_clash(monkeypatch):
    import types

    from p2pcore import load_host
    from p2pcore.api import hookimpl

    def plugin(dist: str) -> types.SimpleNamespace:
        return types.SimpleNamespace(__p2p_distribution__=dist, p2p_register_norms=hookimpl(
            lambda register: register("twin", lambda params, ctx: None)))

    host = load_host(extra_plugins=[("a", plugin("dist-a")), ("b", plugin("dist-b"))])
    monkeypatch.setattr("p2pcore.commands.common.host", lambda: host)
    result = runner.invoke(app, ["list", "norm", "--json"])
    names = {row["name"] for row in json.loads(result.stdout)}
    assert {"dist-a:twin", "dist-b:twin", "batch"} <= names and "twin" not in names


def test_every_module_of_the_commands_package_is_registered():
    """A core command is a module of p2pcore/commands with `register(app)`, listed once in COMMAND_MODULES."""
    import pkgutil

    from p2pcore import commands

    found = {m.name for m in pkgutil.iter_modules(commands.__path__)} - {"common"}
    assert sorted(commands.COMMAND_MODULES) == sorted(found)
    registered = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert {"run", "translate", "list", "show", "validate", "schema", "eval", "data", "new"} <= registered
