"""p2p: image-to-image translation with conditional adversarial networks.

The package's face: `load` (a checkpoint's translation, for Python code: `p2pcore.inference`), `Host` and
`load_host` (the plugin host) and `P2PError`, loaded on first use so that importing any part of p2p stays
light."""

from __future__ import annotations

from typing import Any

from p2pcore.version import __version__

__all__ = ["Host", "P2PError", "Translator", "__version__", "load", "load_host"]

_LAZY = {"Host": "p2pcore.plugins", "load_host": "p2pcore.plugins", "P2PError": "p2pcore.errors",
         "load": "p2pcore.inference", "Translator": "p2pcore.inference"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'p2pcore' has no attribute {name!r}")
