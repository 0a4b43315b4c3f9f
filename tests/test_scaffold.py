"""`p2p new plugin`: each kind's package passes its own contract test before it is installed, its example
recipe validates once its entry point is visible, and bad names, kinds and folders are refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from p2pcore.kinds import KINDS as TABLE
from p2pcore.recipe import Recipe
from p2pcore.scaffold import KINDS, scaffold_plugin
from p2pcore.scaffold.template import template_for

P2P = [sys.executable, "-m", "p2pcore"]


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scaffolded")
    return {kind: scaffold_plugin(f"p2p-try-{kind}", kind, root) for kind in KINDS}


def _installed(plugins: dict[str, Path], site: Path) -> str:
    """A PYTHONPATH on which the packages are importable and their pyproject's entry points discovered,
    as pip would record them (without building anything)."""
    for folder in plugins.values():
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                       f"Version: {project['version']}\n")
        points = project["entry-points"]["p2p.plugins"]
        (info / "entry_points.txt").write_text("[p2p.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    return os.pathsep.join([str(site), *map(str, plugins.values())])


def test_scaffolded_packages_pass_their_contract_tests(plugins):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, plugins.values()))}
    root = next(iter(plugins.values())).parent
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                           "--rootdir", str(root), *map(str, plugins.values())],
                          capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= 3 * len(KINDS) and "skipped" not in done.stdout, done.stdout[-2000:]


def test_every_kind_of_the_table_has_a_template():
    assert tuple(TABLE) == KINDS
    for kind in TABLE.values():
        template = template_for(kind.name)
        assert f"def {kind.hook}(" in template.entry and f"{kind.params.__name__}" in template.entry, kind.name


def _recipe_has_sections(kind: str) -> pytest.MarkDecorator:
    """The callback's example uses the recipe's `[callbacks.<label>]` tables."""
    sections = set(template_for(kind).recipe)
    missing = sections - set(Recipe.model_fields)
    return pytest.mark.skipif(bool(missing), reason=f"recipes have no {', '.join(sorted(missing))} section yet")


@pytest.mark.parametrize("kind", [pytest.param(kind, marks=_recipe_has_sections(kind)) for kind in KINDS])
def test_example_recipe_validates_with_the_component(plugins, kind, tmp_path):
    env = {**os.environ, "PYTHONPATH": _installed(plugins, tmp_path / "site"), "P2P_STRICT_PLUGINS": "1"}
    folder = plugins[kind]
    assert f'"p2p_try_{kind}"' in (folder / "example.toml").read_text()
    done = subprocess.run([*P2P, "validate", "example.toml"], capture_output=True, text=True, env=env, cwd=folder,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    listed = subprocess.run([*P2P, "list", kind, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert f'"p2p_try_{kind}"' in listed.stdout and f'"p2p-try-{kind}"' in listed.stdout, listed.stdout[-2000:]


def test_the_package_is_laid_out_for_a_package_index(plugins):
    folder = plugins["metric"]
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == "p2p-try-metric" and project["dependencies"][0].startswith("p2pcore>=")
    assert project["entry-points"]["p2p.plugins"] == {"p2p_try_metric": "p2p_try_metric"}
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        "pyproject.toml", "README.md", "example.toml", "tests/test_contract.py", "p2p_try_metric/__init__.py",
        "p2p_try_metric/network.py"}
    assert "import torch" not in (folder / "p2p_try_metric" / "__init__.py").read_text()


@pytest.mark.parametrize(("args", "key", "message"), [
    (["new", "plugin", "my plugin"], "NAME", "is not a valid package name"),
    (["new", "plugin", "3d-norms"], "NAME", "which Python cannot import"),
    (["new", "plugin", "pytest"], "NAME", "already importable here"),
    (["new", "plugin", "p2p-x", "--kind", "los"], "--kind", "did you mean 'loss'?"),
    (["new", "plugin", "taken", "--dir", "."], "--dir", "already exists and is not an empty folder"),
])
def test_refusals_exit_2_and_write_nothing(tmp_path, args, key, message):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    before = sorted(tmp_path.rglob("*"))
    done = subprocess.run([*P2P, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and message in done.stderr and key in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and sorted(tmp_path.rglob("*")) == before
