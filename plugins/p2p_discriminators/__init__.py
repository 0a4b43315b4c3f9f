"""Built-in discriminators: PatchGAN (70x70 and the other receptive fields), 1x1 PixelGAN, ImageGAN, and
the multi-scale wrapper of pix2pixHD around any of them.

This entry module imports no torch; each builder imports its architecture's module when called.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from p2pcore.api import BuildContext, DiscriminatorParams, DiscriminatorRef, Field, NormRef, P2PError, hookimpl

P2P_API = ">=1,<2"  # the plugin API versions this plugin supports: p2pcore.api.API_VERSION

RECEPTIVE_FIELDS = {16: 1, 34: 2, 70: 3, 142: 4, 286: 5}  # 9 * 2**n - 2 for n stride-2 layers


def receptive_field_of(n_layers: int) -> int:
    """Receptive field of a PatchGAN with n stride-2 layers followed by two stride-1 layers (4x4, pad 1)."""
    return 9 * 2 ** n_layers - 2


class PatchParams(DiscriminatorParams):
    n_layers: int | None = Field(None, ge=1, le=10, description="stride-2 convolutions (default 3: the 70x70 "
                                                                "PatchGAN); exclusive with receptive_field")
    receptive_field: Literal[16, 34, 70, 142, 286] | None = Field(
        None, description="patch side in pixels, instead of n_layers: 16, 34, 70, 142 or 286")
    ndf: int = Field(64, ge=1, description="filters of the first layer (C64); later layers use up to 8x")
    norm: NormRef = Field("batch", description="normalisation layer (see `p2p list norm`)")
    padding: Literal[1, 2] = Field(1, description="zero padding of every 4x4 convolution: 1 as in pix2pix, 2 as "
                                                  "in pix2pixHD (same weights, slightly larger maps)")

    _default_layers = 3

    @model_validator(mode="after")
    def _one_size(self) -> PatchParams:
        if self.n_layers is not None and self.receptive_field is not None:
            side = receptive_field_of(self.n_layers)
            raise ValueError(f"give either n_layers or receptive_field, not both (n_layers {self.n_layers} "
                             f"means a {side}x{side} receptive field)")
        return self

    @property
    def layers(self) -> int:
        """The number of stride-2 layers, from whichever of n_layers and receptive_field was given."""
        if self.receptive_field is not None:
            return RECEPTIVE_FIELDS[self.receptive_field]
        return self.n_layers if self.n_layers is not None else self._default_layers


class ImageParams(PatchParams):
    n_layers: int | None = Field(None, ge=1, le=10,
                                 description="stride-2 convolutions of the body (default 5: 286x286 patches, "
                                             "C64-C128-C256-C512-C512-C512); exclusive with receptive_field")
    _default_layers = 5


class MultiscaleParams(DiscriminatorParams):
    num_D: int = Field(2, ge=1, le=6, description="scales: the input, then each further one downsampled by "
                                                  "2 (3x3 average pooling); pix2pixHD uses 2 or 3")
    discriminator: DiscriminatorRef = Field(
        {"name": "patch", "n_layers": 3, "ndf": 64, "norm": "instance", "padding": 2},
        description="the discriminator used at every scale, any registered one (its own `conditional` is "
                    "ignored: this one's decides); a table replaces the default whole (pix2pixHD's PatchGAN: "
                    "n_layers 3, ndf 64, instance norm, padding 2)")


class PixelParams(DiscriminatorParams):
    ndf: int = Field(64, ge=1, description="filters of the first 1x1 layer")
    norm: NormRef = Field("batch", description="normalisation layer (see `p2p list norm`)")


def _in_channels(ctx: BuildContext) -> int:
    if not ctx.in_channels:
        raise P2PError("a discriminator needs the number of channels it sees", key=ctx.key or None,
                       hint="build it through a task, or pass in_channels to host.build")
    return ctx.in_channels


def build_patch(params: PatchParams, ctx: BuildContext) -> Any:
    """PatchGAN: classifies each NxN patch as real or fake (pix2pix, CycleGAN)."""
    from p2p_discriminators.patch import PatchDiscriminator

    return PatchDiscriminator(_in_channels(ctx), n_layers=params.layers, ndf=params.ndf,
                              norm=ctx.build(params.norm), conditional=params.conditional,
                              spectral_norm=params.spectral_norm, padding=params.padding)


def build_pixel(params: PixelParams, ctx: BuildContext) -> Any:
    """PixelGAN: 1x1 convolutions, one score per pixel."""
    from p2p_discriminators.pixel import PixelDiscriminator

    return PixelDiscriminator(_in_channels(ctx), ndf=params.ndf, norm=ctx.build(params.norm),
                              conditional=params.conditional, spectral_norm=params.spectral_norm)


def build_image(params: ImageParams, ctx: BuildContext) -> Any:
    """ImageGAN: a PatchGAN body averaged to one score per image."""
    from p2p_discriminators.image import ImageDiscriminator

    return ImageDiscriminator(_in_channels(ctx), n_layers=params.layers, ndf=params.ndf,
                              norm=ctx.build(params.norm), conditional=params.conditional,
                              spectral_norm=params.spectral_norm, padding=params.padding)


def build_multiscale(params: MultiscaleParams, ctx: BuildContext) -> Any:
    """pix2pixHD's multi-scale discriminator: one discriminator per scale, each returning its features."""
    from p2p_discriminators.multiscale import MultiscaleDiscriminator

    in_channels = _in_channels(ctx)
    scales = [ctx.build(params.discriminator, in_channels=in_channels, key=f"{ctx.key}.discriminator")
              for _ in range(params.num_D)]
    return MultiscaleDiscriminator(scales, conditional=params.conditional, spectral_norm=params.spectral_norm)


def map_side(side: int, n_layers: int, padding: int) -> int:
    """Side of a PatchGAN's map for an input side: n stride-2 4x4 convolutions, then two stride-1 ones."""
    for _ in range(n_layers):
        side = (side + 2 * padding - 4) // 2 + 1
    return side + 2 * (2 * padding - 3)


def patch_facts(params: PatchParams) -> dict[str, Any]:
    side = map_side(256, params.layers, params.padding)
    return {"n_layers": params.layers, "receptive_field": receptive_field_of(params.layers),
            "output at 256x256": f"{side}x{side}" if side > 0 else "empty (input too small)"}


def image_facts(params: ImageParams) -> dict[str, Any]:
    return {"n_layers": params.layers, "averaged patches": receptive_field_of(params.layers),
            "output": "N x 1 x 1 x 1"}


@hookimpl
def p2p_register_discriminators(register: Any) -> None:
    register("patch", build_patch, params=PatchParams, aliases=("patchgan",), facts=patch_facts,
             summary="PatchGAN: one real/fake score per NxN patch (N = 16, 34, 70, 142 or 286; default 70)")
    register("multiscale", build_multiscale, params=MultiscaleParams, aliases=("multiscale_d",),
             facts=lambda params: {"scales": params.num_D, "each": params.discriminator.name},
             summary="pix2pixHD's multi-scale discriminator: any discriminator at num_D scales (1, 1/2, "
                     "1/4 ...), returning every intermediate feature map for feature matching")
    register("pixel", build_pixel, params=PixelParams, aliases=("pixelgan",),
             facts=lambda params: {"receptive_field": 1},
             summary="1x1 PixelGAN: one score per pixel, judges colour statistics only")
    register("image", build_image, params=ImageParams, aliases=("imagegan",), facts=image_facts,
             summary="ImageGAN: a PatchGAN body averaged to one score per image (N x 1 x 1 x 1)")
