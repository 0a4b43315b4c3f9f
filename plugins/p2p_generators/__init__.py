"""Built-in generators: the pix2pix U-Net and encoder-decoder, the CycleGAN ResNet generator, pix2pixHD's
global generator and local enhancer.

This entry module imports no torch; each builder imports its architecture's module when called.
"""

from __future__ import annotations

from typing import Any, Literal

from p2p_generators.taps import local_tap_names, resnet_tap_names, unet_tap_names
from p2pcore.api import BuildContext, Field, NormRef, P2PError, Params, hookimpl

P2P_API = ">=1.4,<2"  # the plugin API versions this plugin supports: p2pcore.api.API_VERSION

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


class GlobalParams(Params):
    ngf: int = Field(64, ge=1, le=MAX_NGF, description=(
        "filters of the first layer (c7s1-64); each downsampling doubles them (1024 after four)"))
    n_downsample: int = Field(4, ge=1, le=MAX_DEPTH, description="stride-2 convolutions before the residual "
                                                                 "blocks (d128 .. d1024: 4)")
    n_blocks: int = Field(9, ge=0, le=MAX_BLOCKS, description="residual blocks at 1/2**n_downsample resolution")
    norm: NormRef = Field("instance", description="normalisation layer (see `p2p list norm`)")
    padding: Literal["reflect", "replicate", "zeros"] = Field(
        "reflect", description="padding of the 7x7 and residual 3x3 convolutions")


class LocalEnhancerParams(GlobalParams):
    ngf: int = Field(32, ge=1, le=MAX_NGF, description=(
        "filters of the finest enhancer's first layer (c7s1-32); each enhancer below doubles them and G1 "
        "has ngf * 2**n_enhancers (64 for one enhancer)"))
    n_enhancers: int = Field(1, ge=1, le=4, description="local enhancers G2, each at twice the resolution of "
                                                        "the network below (1: G1 at half resolution)")
    n_blocks_local: int = Field(3, ge=0, le=MAX_BLOCKS, description="residual blocks of each enhancer")


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


def build_global(params: GlobalParams, ctx: BuildContext) -> Any:
    """pix2pixHD's global generator G1: c7s1-64, d128 .. d1024, R1024 x 9, u512 .. u64, c7s1-out."""
    from p2p_generators.global_generator import GlobalGenerator

    in_channels, out_channels = _channels(ctx)
    return GlobalGenerator(in_channels, out_channels, ngf=params.ngf, n_downsample=params.n_downsample,
                           n_blocks=params.n_blocks, norm=ctx.build(params.norm), padding=params.padding)


def build_local_enhancer(params: LocalEnhancerParams, ctx: BuildContext) -> Any:
    """pix2pixHD's coarse-to-fine generator: G1 at half resolution (global_net) and enhancers G2."""
    from p2p_generators.local_enhancer import LocalEnhancer

    in_channels, out_channels = _channels(ctx)
    return LocalEnhancer(in_channels, out_channels, ngf=params.ngf, n_enhancers=params.n_enhancers,
                         n_blocks_local=params.n_blocks_local, n_downsample=params.n_downsample,
                         n_blocks=params.n_blocks, norm=ctx.build(params.norm), padding=params.padding)


def global_facts(params: GlobalParams) -> dict[str, Any]:
    return {"size_multiple": 2 ** (params.n_downsample + 1),
            "residual blocks at": f"1/{2 ** params.n_downsample} resolution",
            "taps": resnet_tap_names(params.n_downsample, params.n_blocks)}


def local_enhancer_facts(params: LocalEnhancerParams) -> dict[str, Any]:
    return {"size_multiple": 2 ** (params.n_downsample + 1 + params.n_enhancers),
            "G1 (global_net)": f"ngf {params.ngf * 2 ** params.n_enhancers} at 1/{2 ** params.n_enhancers} "
                               "resolution",
            "taps": local_tap_names(params.n_blocks_local)}


def unet_facts(params: UNetParams) -> dict[str, Any]:
    side = 2 ** params.depth
    return {"size_multiple": side, "bottleneck": f"1x1 at {side}x{side} inputs", "taps": unet_tap_names(params.depth)}


def resnet_facts(params: ResNetParams) -> dict[str, Any]:
    return {"size_multiple": 4, "residual blocks at": "1/4 resolution",
            "taps": resnet_tap_names(2, params.n_blocks)}


@hookimpl
def p2p_register_generators(register: Any) -> None:
    register("unet", build_unet, params=UNetParams, facts=unet_facts,
             summary="U-Net with skips between mirrored layers (pix2pix); depth 8 for 256 px, 7 for 128 px")
    register("encoder_decoder", build_encoder_decoder, params=EncoderDecoderParams, aliases=("encdec",),
             facts=unet_facts, summary="encoder-decoder without skips (the pix2pix baseline)")
    register("resnet", build_resnet, params=ResNetParams, facts=resnet_facts,
             summary="ResNet generator (CycleGAN): c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-out")
    register("global", build_global, params=GlobalParams, aliases=("global_generator",), facts=global_facts,
             summary="pix2pixHD global generator G1: c7s1-64, d128 .. d1024, R1024 x 9, u512 .. u64, c7s1-out")
    register("local_enhancer", build_local_enhancer, params=LocalEnhancerParams, aliases=("local",),
             facts=local_enhancer_facts,
             summary="pix2pixHD coarse-to-fine generator: G1 (global_net) at half resolution, enhancers G2 "
                     "adding detail at full resolution")
