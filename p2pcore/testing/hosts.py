"""Plugin hosts for tests: the installed plugins, plus modules of a plugin that is not installed yet."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from p2pcore.plugins import Host, load_host

Plugin = ModuleType | str | tuple[str, Any]


def _named(plugin: Plugin) -> tuple[str, Any]:
    """(name, module) for a module, an importable module name, or a (name, module-or-object) pair."""
    if isinstance(plugin, tuple):
        return plugin
    module = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
    return module.__name__.rsplit(".", 1)[-1], module


def host_with(*plugins: Plugin) -> Host:
    """A host with every installed plugin and `plugins` registered as if installed.

    A plugin of `plugins` that fails to import or register fails the test with its error, where the
    installed ones that fail are only recorded (as `p2p plugins` lists them)."""
    extras = [_named(p) for p in plugins]
    host = load_host(extra_plugins=extras)
    names = {name for name, _ in extras}
    failed = [r for r in host.records if not r.ok and r.name in names]
    if failed:
        raise AssertionError("; ".join(f"plugin {r.name!r} failed to load: {r.error}" for r in failed))
    return host
