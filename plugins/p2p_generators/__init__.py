"""Built-in generators: the pix2pix U-Net and encoder-decoder, the CycleGAN ResNet generator.

This entry module imports no torch; each builder imports its architecture's module when called.
"""

from __future__ import annotations

from typing import Any, Literal

from p2pcore.api import BuildContext, Field, NormRef, P2PError, Params, hookimpl

Upsample = Literal["transposed", "resize_conv"]


MAX_NGF = 1024
MAX_DEPTH = 10
MAX_BLOCKS = 64


class UNetParams(Params):
    depth: int = Field(8, ge=1, le=MAX_DEPTH, description=(
        f"number of stride-2 downsamplings, 1 to {MAX_DEPTH}: 8 for 256x256 inputs (1x1 bottleneck), 7 for "
        f"128x128; sides must be multiples of 2**depth ({2 ** MAX_DEPTH} at depth {MAX_DEPTH})"))
    ngf: int = Field(64, ge=1, le=MAX_NGF, description=(
        f"filters of the first encoder layer (C64), 1 to {MAX_NGF}; later ones up to 8x (weights grow with "
        "its square)"))
    norm: NormRef = Field("batch", description="normalisation layer (see `p2p list norm`)")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout in the (depth - 5) decoder blocks next to "
                                                        "the innermost (CD512); 0 disables")
    upsample: Upsample = Field("transposed", description="`transposed`: 4x4 stride-2 transposed convolution; "
                                                         "`resize_conv`: nearest 2x then 3x3 convolution "
                                                         "(no checkerboard artefacts)")


class EncoderDecoderParams(UNetParams):
    bottleneck_norm: bool = Field(False, description="normalise the innermost encoder layer (the paper's "
                                                     "errata: at batch size 1 a batch norm zeroes the code)")


class ResNetParams(Params):
    n_blocks: int = Field(9, ge=0, le=MAX_BLOCKS, description=(
        f"residual blocks at 1/4 resolution, 0 to {MAX_BLOCKS}: 9 for 256x256, 6 for 128"))
    ngf: int = Field(64, ge=1, le=MAX_NGF, description=(
        f"filters of the first layer (c7s1-64), 1 to {MAX_NGF}; the residual blocks have 4x (weights grow "
        "with its square)"))
    norm: NormRef = Field("instance", description="normalisation layer (see `p2p list norm`)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout between the two convolutions of each block")
    padding: Literal["reflect", "replicate", "zeros"] = Field(
        "reflect", description="padding of the 7x7 and residual 3x3 convolutions")
    upsample: Upsample = Field("transposed", description="`transposed`: 3x3 stride-2 transposed convolution; "
                                                         "`resize_conv`: nearest 2x then 3x3 convolution")


def _channels(ctx: BuildContext) -> tuple[int, int]:
    if not ctx.in_channels or not ctx.out_channels:
        raise P2PError("a generator needs its input and output channel counts",
                       key=ctx.key or None,
                       hint="build it through a task or pass in_channels/out_channels to host.build")
    return ctx.in_channels, ctx.out_channels


def build_unet(params: UNetParams, ctx: BuildContext) -> Any:
    """U-Net: encoder-decoder with skips between mirrored layers (pix2pix)."""
    from p2p_generators.unet import UNetGenerator

    in_channels, out_channels = _channels(ctx)
    return UNetGenerator(in_channels, out_channels, depth=params.depth, ngf=params.ngf,
                         norm=ctx.build(params.norm), dropout=params.dropout, upsample=params.upsample)


def build_encoder_decoder(params: EncoderDecoderParams, ctx: BuildContext) -> Any:
    """Encoder-decoder without skips (the pix2pix baseline)."""
    from p2p_generators.encoder_decoder import EncoderDecoderGenerator

    in_channels, out_channels = _channels(ctx)
    return EncoderDecoderGenerator(in_channels, out_channels, depth=params.depth, ngf=params.ngf,
                                   norm=ctx.build(params.norm), dropout=params.dropout,
                                   upsample=params.upsample, bottleneck_norm=params.bottleneck_norm)


def build_resnet(params: ResNetParams, ctx: BuildContext) -> Any:
    """ResNet generator: two downsamplings, residual blocks, two upsamplings (CycleGAN)."""
    from p2p_generators.resnet import ResNetGenerator

    in_channels, out_channels = _channels(ctx)
    return ResNetGenerator(in_channels, out_channels, n_blocks=params.n_blocks, ngf=params.ngf,
                           norm=ctx.build(params.norm), dropout=params.dropout, padding=params.padding,
                           upsample=params.upsample)


def unet_facts(params: UNetParams) -> dict[str, Any]:
    side = 2 ** params.depth
    return {"size_multiple": side, "bottleneck": f"1x1 at {side}x{side} inputs"}


def resnet_facts(params: ResNetParams) -> dict[str, Any]:
    return {"size_multiple": 4, "residual blocks at": "1/4 resolution"}


@hookimpl
def p2p_register_generators(register: Any) -> None:
    register("unet", build_unet, params=UNetParams, facts=unet_facts,
             summary="U-Net with skips between mirrored layers (pix2pix); depth 8 for 256 px, 7 for 128 px")
    register("encoder_decoder", build_encoder_decoder, params=EncoderDecoderParams, aliases=("encdec",),
             facts=unet_facts, summary="encoder-decoder without skips (the pix2pix baseline)")
    register("resnet", build_resnet, params=ResNetParams, facts=resnet_facts,
             summary="ResNet generator (CycleGAN): c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-out")
