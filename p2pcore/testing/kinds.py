"""Each kind's contract check, found through the table of kinds (`p2pcore.kinds.KINDS`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from p2pcore.kinds import get_kind
from p2pcore.plugins import Host


def contract_check(kind: str) -> Callable[..., Any]:
    """The function of `p2pcore.testing` that checks components of `kind` (``check_norm`` for "norm")."""
    module, name = get_kind(kind).check.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def check_component(host: Host, kind: str, name: str, **options: Any) -> Any:
    """Check `kind` `name` with its kind's contract check; `options` are the check's own options (`size`,
    `in_channels`, ...) and the component's parameters. Returns what the check returns."""
    return contract_check(kind)(host, name, **options)
