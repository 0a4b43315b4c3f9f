"""Built-in tasks: pix2pix (paired translation with a conditional GAN)."""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, Params, hookimpl


def build_pix2pix(params: Params, ctx: BuildContext) -> Any:
    """Paired translation A -> B: generator G(a), discriminator on (a, b) pairs or on b alone."""
    from p2p_tasks.pix2pix import Pix2PixTask

    return Pix2PixTask()


@hookimpl
def p2p_register_tasks(register: Any) -> None:
    register("pix2pix", build_pix2pix)
