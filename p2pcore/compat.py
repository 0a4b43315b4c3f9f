"""Whether a plugin supports the running plugin API, from the ``P2P_API`` range its entry module declares.

The declaration is read from the module's source before the module is imported, so a plugin written
for another API is reported as incompatible instead of failing on an import of a name this API lacks.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from p2pcore.api.base import API_VERSION

DECLARATION = "P2P_API"


class Incompatible(Exception):
    """A plugin whose declared range excludes :data:`p2pcore.api.API_VERSION`."""

    def __init__(self, declared: str) -> None:
        super().__init__(f"needs plugin API {declared}; {offered()}")
        self.declared = declared


def offered() -> str:
    """What the installed p2pcore offers, for messages: ``p2pcore 0.1.0 offers plugin API 1.0``."""
    try:
        version = md.version("p2pcore")
    except md.PackageNotFoundError:  # running from a source tree that was never installed
        version = "(not installed)"
    return f"p2pcore {version} offers plugin API {API_VERSION}"


def declared_in_source(module: str) -> str | None:
    """The string a module's source assigns to ``P2P_API`` at top level, without importing the module.

    None when the module has no such assignment or its source cannot be read (the attribute is then
    looked up after importing it)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        if any(isinstance(t, ast.Name) and t.id == DECLARATION for t in targets) \
                and isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
    return None


def require_supported(declared: Any) -> None:
    """Raise :class:`Incompatible` when `declared` excludes the running API; a declaration that is not a
    version specifier is the plugin's bug (ValueError)."""
    if not isinstance(declared, str):
        raise ValueError(f"{DECLARATION} must be a version specifier string such as '>=1,<2', got {declared!r}")
    try:
        supported = SpecifierSet(declared)
    except InvalidSpecifier:
        raise ValueError(f"{DECLARATION} = {declared!r} is not a version specifier; write e.g. '>=1,<2'") from None
    if not supported.contains(Version(API_VERSION)):
        raise Incompatible(declared)
