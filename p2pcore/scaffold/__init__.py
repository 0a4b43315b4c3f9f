"""`p2p new plugin`: a plugin package that works and passes its contract test from the first minute."""

from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path
from typing import Any

import tomli_w

from p2pcore.atomicfile import write_text_atomically
from p2pcore.errors import P2PError
from p2pcore.kinds import NAMES, get_kind
from p2pcore.scaffold.template import Template, template_for
from p2pcore.testing.recipes import tiny_recipe

KINDS = NAMES  # every kind of the table of kinds has a template
DISTRIBUTION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # a package index's rule for names


def module_name(name: str) -> str:
    """The import name of distribution `name` (``my-norms`` -> ``my_norms``), or a P2PError saying why
    `name` cannot be one."""
    if not DISTRIBUTION.match(name):
        raise P2PError(f"{name!r} is not a valid package name", key="NAME",
                       hint="use letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
    module = re.sub(r"[-_.]+", "_", name).lower()
    if not module.isidentifier() or keyword.iskeyword(module):
        raise P2PError(f"{name!r} gives the module name {module!r}, which Python cannot import", key="NAME",
                       hint="start with a letter, e.g. p2p-" + name)
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin not in (None, "namespace"):  # a bare folder of that name is no module
        raise P2PError(f"a module named {module!r} is already importable here; the plugin would clash with it",
                       key="NAME", hint=f"choose another name, e.g. p2p-{name}")
    return module


def check_kind(kind: str) -> Template:
    """The template of `kind`; an unknown kind is a P2PError on ``--kind`` suggesting the closest."""
    try:
        get_kind(kind, key="--kind")
    except P2PError as exc:
        raise P2PError(f"p2p new plugin cannot make a {kind!r}", key="--kind", hint=exc.hint) from None
    return template_for(kind)


def check_target(target: Path) -> None:
    if target.is_file() or (target.is_dir() and any(target.iterdir())):
        raise P2PError(f"{target} already exists and is not an empty folder", key="--dir",
                       hint="choose another NAME or --dir; nothing was written")


def _fill(text: str, name: str) -> str:
    return text.replace("$Name", "".join(p.capitalize() for p in name.split("_"))).replace("$name", name)


def _filled(value: Any, name: str) -> Any:
    if isinstance(value, str):
        return _fill(value, name)
    if isinstance(value, dict):
        return {_fill(k, name): _filled(v, name) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, name) for v in value]
    return value


def files(distribution: str, module: str, kind: str) -> dict[str, str]:
    """Relative path -> text of every file of the package."""
    template = check_kind(kind)
    from p2pcore.version import __version__

    kind_row = get_kind(kind)
    torch = "import torch" in template.module
    second = f"{module}.{template.module_name}"
    entry = (f'"""{distribution}: a p2p plugin registering the {kind} `{module}`:\n{template.summary}.\n\n'
             f"It imports only `p2pcore.api` from p2p, and {'torch' if torch else 'the rest of its code'} only inside "
             f"its builder (from {second}),\nso `p2p list` and `p2p validate` stay fast.\"\"\"\n\n"
             "from __future__ import annotations\n\nfrom typing import Any\n" + template.entry
             + '\n\nP2P_API = ">=1.3,<2"  # the plugin API versions this package supports (p2pcore.api.API_VERSION)\n')
    code = (f'"""The {"torch part" if torch else "implementation"} of {module}: imported by its builder, never by '
            f'the entry module."""\n\nfrom __future__ import annotations\n' + template.module)
    imports = ", ".join(sorted({"check_entry_module_light", "check_params_round_trip", kind_row.check_name,
                                *template.imports}))
    test = (f'"""p2p\'s contract checks on {module}: `pytest` in this folder (the fixtures come with p2pcore).\n\n'
            "The marker registers the module even before the package is installed (`PYTHONPATH=. pytest`).\"\"\"\n\n"
            f"from __future__ import annotations\n\nimport pytest\nfrom p2pcore.testing import {imports}\n\n"
            f"import {module}\n\n"
            f'pytestmark = pytest.mark.p2p_plugins(("{module}", {module}))\n\n'
            + template.checks + "\n\n"
            f'def test_params_round_trip(p2p_host):\n    check_params_round_trip(p2p_host, "{kind}", "{module}")\n\n\n'
            f'def test_entry_module_is_light():\n    check_entry_module_light("{module}")\n')
    recipe = tiny_recipe(**_filled(template.recipe, module))
    return {
        "pyproject.toml": _pyproject(distribution, module, kind, template, __version__),
        "README.md": _readme(distribution, module, kind, template),
        f"{module}/__init__.py": _fill(entry, module),
        f"{module}/{template.module_name}.py": _fill(code, module),
        "tests/test_contract.py": _fill(test, module),
        "example.toml": "# a smoke run on CPU in seconds: p2p validate example.toml && p2p run example.toml\n"
                        + tomli_w.dumps(recipe),
    }


def _pyproject(distribution: str, module: str, kind: str, template: Template, version: str) -> str:
    return tomli_w.dumps({
        "build-system": {"requires": ["setuptools>=68"], "build-backend": "setuptools.build_meta"},
        "project": {"name": distribution, "version": "0.1.0", "description": f"A p2p plugin: {template.summary}.",
                    "requires-python": ">=3.11", "dependencies": [f"p2pcore>={version}"],
                    "optional-dependencies": {"test": ["pytest>=8"]},
                    "entry-points": {"p2p.plugins": {module: module}}},
        "tool": {"setuptools": {"packages": [module]}, "pytest": {"ini_options": {"testpaths": ["tests"]}}},
    })


def _readme(distribution: str, module: str, kind: str, template: Template) -> str:
    return f"""# {distribution}

A plugin for [p2p](https://pypi.org/project/p2pcore/) registering the {kind} `{module}`: {template.summary}.

```bash
pip install -e ".[test]"     # p2p finds the plugin through its `p2p.plugins` entry point
p2p show {kind} {module}      # its parameters
pytest                       # p2p's contract checks (p2pcore.testing) on it
p2p validate example.toml    # a tiny recipe using it; `p2p run example.toml` trains it for a few steps
```

`{module}/__init__.py` holds the parameters, the builder and the registration and imports only
`p2pcore.api` from p2p; the torch code is in `{module}/network.py`, imported when the builder runs.
"""


def scaffold_plugin(name: str, kind: str, parent: Path) -> Path:
    """Write the package folder `parent/name` and return it; refuses before writing anything."""
    target = parent / name
    check_target(target)
    module = module_name(name)
    written = files(name, module, kind)
    for relative, text in written.items():
        try:
            write_text_atomically(target / relative, text, what=f"the package {target.name}",
                                  hint="choose a folder you can write to")
        except P2PError as error:
            raise P2PError(error.message, file=error.file, key="--dir", hint=error.hint) from None
    return target
