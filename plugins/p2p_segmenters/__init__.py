"""Built-in semantic segmenters, for the FCN-score."""

from __future__ import annotations

from typing import Any

from p2pcore.api import hookimpl


@hookimpl
def p2p_register_segmenters(register: Any) -> None:
    pass
