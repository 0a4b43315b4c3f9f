"""Built-in evaluation metrics."""

from __future__ import annotations

from typing import Any

from p2pcore.api import hookimpl


@hookimpl
def p2p_register_metrics(register: Any) -> None:
    pass
