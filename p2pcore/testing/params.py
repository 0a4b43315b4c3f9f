"""Checks that need no torch: parameters survive a recipe file, and entry modules import light."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from typing import Any

import tomli_w

from p2pcore.plugins import Host
from p2pcore.testing.support import resolve, spec_of

HEAVY = ("torch", "torchvision")


def check_params_round_trip(host: Host, kind: str, name: str, **params: Any) -> Any:
    """The parameters of `kind` `name`, written to TOML as a recipe records them and read back, validate
    to equal parameters (nothing lost, nothing TOML cannot hold). Returns the TOML text."""
    first = host.resolve(kind, spec_of(name, params))
    what = f"{kind} {name!r}"
    try:
        text = tomli_w.dumps({"component": first.as_table()})
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{what}: its parameters {first.as_table()} cannot be written to TOML: {exc}") from exc
    back = tomllib.loads(text)["component"]
    again = resolve(host, kind, back.pop("name"), back)
    assert again == first.params, f"{what}: parameters {first.params!r} came back from TOML as {again!r}:\n{text}"
    return text


def check_entry_module_light(module: str) -> None:
    """Importing plugin entry module `module` in a fresh interpreter imports no torch, so `p2p --help`,
    `list` and `validate` stay fast; import torch inside builders instead."""
    probe = ("import importlib, sys\n"
             f"importlib.import_module({module!r})\n"
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, f"importing {module!r} failed:\n{done.stderr[-2000:]}"
    heavy = done.stdout.split()
    assert not heavy, f"importing {module!r} imports {', '.join(heavy)}; import it inside the builders " \
                      "(`def build(params, ctx): import torch ...`) so p2p's commands stay fast"
