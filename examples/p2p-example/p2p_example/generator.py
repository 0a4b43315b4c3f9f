"""`se_resnet` generator: parameters and builder (torch-free; the network is in se_network.py)."""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, Field, NormRef, P2PError, Params


class SEResNetParams(Params):
    ngf: int = Field(64, ge=1, le=1024, description="filters of the first layer; each downsampling doubles them")
    n_down: int = Field(2, ge=1, le=6, description="stride-2 convolutions before the blocks; sides must be "
                                                   "multiples of 2**n_down")
    n_blocks: int = Field(6, ge=0, le=64, description="squeeze-and-excitation residual blocks at the bottleneck")
    reduction: int = Field(4, ge=1, le=64, description="channel reduction inside each block's excitation "
                                                       "(channels // reduction gates, at least 1)")
    norm: NormRef = Field("instance", description="normalisation layer (see `p2p list norm`): "
                                                  "`group` from this package works too")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout between the two convolutions of each block")


def se_resnet_tap_names(n_down: int, n_blocks: int) -> tuple[str, ...]:
    """The feature taps in execution order: plain names, so facts list them without torch."""
    return ("input", "head", *(f"down{i}" for i in range(1, n_down + 1)),
            *(f"block{i}" for i in range(1, n_blocks + 1)))


def se_resnet_facts(params: SEResNetParams) -> dict[str, Any]:
    """What `p2p show generator se_resnet` prints, derived without torch; "taps" lets a task check the layers it
    asks for at `p2p validate` (p2pcore.api.check_taps)."""
    return {"size_multiple": 2 ** params.n_down, "blocks at": f"1/{2 ** params.n_down} resolution, "
            f"{params.ngf * 2 ** params.n_down} channels", "taps": se_resnet_tap_names(params.n_down, params.n_blocks)}


def build_se_resnet(params: SEResNetParams, ctx: BuildContext) -> Any:
    """ResNet-like generator whose blocks recalibrate their channels (squeeze-and-excitation)."""
    from .se_network import SEResNetGenerator

    if not ctx.in_channels or not ctx.out_channels:
        raise P2PError("a generator needs its input and output channel counts", key=ctx.key or None,
                       hint="build it through a task, or pass in_channels/out_channels to host.build")
    return SEResNetGenerator(ctx.in_channels, ctx.out_channels, ngf=params.ngf, n_down=params.n_down,
                             n_blocks=params.n_blocks, reduction=params.reduction, norm=ctx.build(params.norm),
                             dropout=params.dropout)
