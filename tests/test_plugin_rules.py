"""Built-in plugins are shaped like third-party ones: they import only `p2pcore.api` from the core,
and their entry modules do not import torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
PACKAGES = sorted(p for p in PLUGINS.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def core_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "p2pcore":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "p2pcore")
    return found


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_plugins_import_only_the_api(package):
    for module in package.rglob("*.py"):
        assert core_imports(module) <= {"p2pcore.api"}, module


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_entry_modules_do_not_import_torch(package):
    probe = f"import sys, {package.name}; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]
