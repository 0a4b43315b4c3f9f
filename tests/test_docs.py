"""The generated reference pages: docs/hooks.md and docs/recipes.md are what the code generates, every hook is
documented, and `p2p docs --check` tells a stale page."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from p2pcore import hookspecs, load_host
from p2pcore.commands.docs import register
from p2pcore.docgen import pages, stale
from p2pcore.docgen.hooks import hooks, undocumented
from p2pcore.docgen.markdown import docstring
from p2pcore.docgen.recipes import BUILT_IN
from p2pcore.recipe import Recipe
from p2pcore.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return pages(load_host())


def test_the_committed_pages_are_what_the_code_generates(generated):
    assert stale(DOCS, generated) == [], "docs/ is stale: run `p2p docs --out docs` and commit the pages"


def test_every_hook_is_documented_and_has_a_section(generated):
    assert undocumented() == []
    names = [name for name, _, _ in hooks()]
    assert set(names) == {name for name in dir(hookspecs) if name.startswith("p2p_")}
    for name in names:
        assert f"\n## {name}\n" in generated["hooks.md"] and f"def {name}(" in generated["hooks.md"]


def test_an_undocumented_hook_is_reported():
    def p2p_bare(app):
        pass

    def p2p_half(register, app):
        """Does something.

        :param register: the registering callable.
        """

    module = types.SimpleNamespace(p2p_bare=p2p_bare, p2p_half=p2p_half, helper=len)
    assert undocumented(module) == ["p2p_bare: no docstring", "p2p_half: parameter 'app' has no ':param app:' line",
                                    "p2p_half: no 'Example::' block"]


def test_docstrings_become_markdown():
    text = docstring("""Summary with ``code`` and :class:`p2pcore.api.Register`.

        :param app: the application,
            continued here.

        Example::

            @hookimpl
            def hook(app):
                pass
        """)
    assert text.splitlines() == [
        "Summary with `code` and `p2pcore.api.Register`.", "", "- `app`: the application, continued here.", "",
        "Example:", "", "```python", "@hookimpl", "def hook(app):", "    pass", "```"]


def test_the_recipes_page_has_every_section_key_and_every_builtin_component(generated):
    page = generated["recipes.md"]
    for key in Recipe.model_fields:
        assert f"| `{key}` |" in page
    for heading in ("### [train]", "### [eval]", "### [optim.<player>]", "### [loss.<label>]"):
        assert heading in page
    host = load_host()
    builtins = [s for kind in KINDS for s in host.registry.specs(kind) if s.distribution == BUILT_IN]
    assert builtins
    for spec in builtins:
        section = page.split(f"#### {spec.kind} `{spec.name}`", 1)[1].split("\n#### ", 1)[0]
        for field in spec.params.model_fields:
            assert f"| `{field}` |" in section, f"{spec.kind} {spec.name}: {field}"


def test_docs_check_exits_1_on_a_missing_or_edited_page_and_writing_fixes_it(tmp_path):
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    assert runner.invoke(app, ["docs", "--out", str(tmp_path), "--check"]).exit_code == 1
    assert not any(tmp_path.iterdir())
    assert runner.invoke(app, ["docs", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["docs", "--out", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / "hooks.md").write_text((tmp_path / "hooks.md").read_text() + "an edit\n")
    checked = runner.invoke(app, ["docs", "--out", str(tmp_path), "--check"])
    assert checked.exit_code == 1 and "hooks.md" in checked.output and "recipes.md" not in checked.output


def test_generating_the_pages_imports_no_torch():
    probe = ("import sys\nfrom p2pcore import load_host\nfrom p2pcore.docgen import pages\npages(load_host())\n"
             "assert 'torch' not in sys.modules, 'torch imported'\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-1000:]


def test_links_between_the_pages_readme_and_contributing_resolve():
    import re

    for page in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to {target}, which does not exist"
    assert "docs/plugins.md" in (ROOT / "README.md").read_text()
    assert "docs/plugins.md" in (ROOT / "CONTRIBUTING.md").read_text()
    assert "../CONTRIBUTING.md" in (DOCS / "plugins.md").read_text()
