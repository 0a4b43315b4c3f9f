"""`noisy` discriminator: parameters and builder of a wrapper around any registered discriminator
(torch-free; the module is in noisy_network.py)."""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, DiscriminatorParams, DiscriminatorRef, Field, P2PError


class NoisyParams(DiscriminatorParams):
    discriminator: DiscriminatorRef = Field(
        {"name": "patch", "n_layers": 3, "ndf": 64, "norm": "instance"},
        description="the discriminator wrapped, any registered one (its own `conditional` is ignored: this "
                    "one's decides what the task feeds it)")
    sigma: float = Field(0.1, ge=0, le=2, description="standard deviation of the Gaussian noise added to every "
                                                      "input while training (images are in [-1, 1]); 0: none")


def noisy_facts(params: NoisyParams) -> dict[str, Any]:
    return {"wraps": params.discriminator.name, "input noise": f"N(0, {params.sigma}^2) while training"}


def build_noisy(params: NoisyParams, ctx: BuildContext) -> Any:
    """Instance noise: the wrapped discriminator judges inputs with Gaussian noise added while training,
    which blurs real and fake distributions together early on and steadies the game."""
    from .noisy_network import wrap

    if not ctx.in_channels:
        raise P2PError("a discriminator needs the number of channels it sees", key=ctx.key or None,
                       hint="build it through a task, or pass in_channels to host.build")
    inner = ctx.build(params.discriminator, key=f"{ctx.key}.discriminator" if ctx.key else "discriminator")
    return wrap(inner, sigma=params.sigma, conditional=params.conditional, spectral_norm=params.spectral_norm)
