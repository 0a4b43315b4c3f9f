"""Parameters and builders of the built-in image-quality metrics. Torch-free: `p2p show` and `p2p validate`
read the parameters and figures here; each builder imports its torch implementation when a run needs it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from p2pcore.api import BuildContext, Field, MetricParams

LOWER_IS_BETTER: Mapping[str, bool] = {"": False}
HIGHER_IS_BETTER: Mapping[str, bool] = {"": True}


class L1Params(MetricParams):
    def figures(self) -> Mapping[str, bool]:
        return LOWER_IS_BETTER


class PsnrParams(MetricParams):
    floor_mse: float = Field(1e-10, gt=0, le=1e-3,
                             description="an image's mean squared error (in [0, 1] units) is floored at this, so "
                                         "an output equal to its target scores 10*log10(1/floor_mse) dB (100 by "
                                         "default) instead of infinity")


class SsimParams(MetricParams):
    pass


class MsSsimParams(MetricParams):
    pass


class LabHistogramParams(MetricParams):
    bins: int = Field(256, ge=2, le=4096,
                      description="histogram bins per channel over fixed ranges: L in [0, 100], a and b in "
                                  "[-128, 127]")

    def figures(self) -> Mapping[str, bool]:
        return {"": True, "L": True, "a": True, "b": True}

    def paired(self) -> bool:
        return False


class FrechetParams(MetricParams):
    network: Literal["inception_v3", "vgg16"] = Field(
        "inception_v3",
        description="torchvision architecture giving the features, built without weights: inception_v3 (its "
                    "2048 pooled features) or vgg16 (its last convolution block's 512 channels, averaged over "
                    "space). A torchvision inception_v3 with ImageNet weights is NOT the standard FID network "
                    "(a port of TensorFlow's 2015 Inception with its own weights): figures computed with it are "
                    "not comparable with published FID values")
    weights: str = Field(
        description="the network's weights: a .pth state_dict (read with weights_only, e.g. torchvision's "
                    "inception_v3_google-0cc3c7bd.pth or vgg16-397923af.pth) or a .safetensors file with "
                    "torchvision's key names; never downloaded")
    size: int | None = Field(
        None, ge=32, le=1024,
        description="side of the square the images are resized to before the network (bilinear, antialiased); "
                    "default: the network's input size (299 for inception_v3, 224 for vgg16); at least 75 for "
                    "inception_v3")

    def figures(self) -> Mapping[str, bool]:
        return LOWER_IS_BETTER

    def paired(self) -> bool:
        return False


def build_l1(params: L1Params, ctx: BuildContext) -> Any:
    """Mean absolute error between output and target over the split, in the images' [-1, 1] units."""
    from p2p_metrics.pixelwise import MeanAbsoluteError

    return MeanAbsoluteError()


def build_psnr(params: PsnrParams, ctx: BuildContext) -> Any:
    """Peak signal-to-noise ratio in dB of output against target, images in [0, 1], mean of per-image PSNR."""
    from p2p_metrics.pixelwise import PeakSignalToNoise

    return PeakSignalToNoise(params.floor_mse)


def build_ssim(params: SsimParams, ctx: BuildContext) -> Any:
    """Structural similarity of output and target: gaussian window, sigma 1.5, images in [0, 1], mean of
    per-image SSIM."""
    from p2p_metrics.structural import StructuralSimilarity

    return StructuralSimilarity(multiscale=False, key=ctx.key or "eval.metrics.ssim")


def build_ms_ssim(params: MsSsimParams, ctx: BuildContext) -> Any:
    """Multi-scale structural similarity (5 scales) of output and target, mean of per-image values; images
    need sides of at least 176 pixels."""
    from p2p_metrics.structural import StructuralSimilarity

    return StructuralSimilarity(multiscale=True, key=ctx.key or "eval.metrics.ms_ssim")


def build_lab_histogram(params: LabHistogramParams, ctx: BuildContext) -> Any:
    """Intersection of the CIE Lab histograms of all outputs and all real images (pix2pix's colourfulness)."""
    from p2p_metrics.colour_histogram import LabHistogramIntersection

    return LabHistogramIntersection(params.bins)


def build_frechet(params: FrechetParams, ctx: BuildContext) -> Any:
    """Frechet distance between Gaussian fits of network features of outputs and of real images."""
    from pathlib import Path

    from p2p_metrics.features import feature_network
    from p2p_metrics.frechet import FrechetDistance

    network = feature_network(params.network, Path(params.weights).expanduser(), size=params.size,
                              key=ctx.key or "eval.metrics.frechet_distance")
    return FrechetDistance(network)


def register_image_metrics(register: Any) -> None:
    """Register the image-quality metrics (a hook in this package calls it)."""
    register("l1", build_l1, params=L1Params,
             summary="mean absolute error between output and target over the split, in [-1, 1] units as the "
                     "L1 loss (lower is better)")
    register("psnr", build_psnr, params=PsnrParams,
             summary="peak signal-to-noise ratio in dB, images mapped to [0, 1]; reported as the mean of "
                     "per-image PSNR, the usual convention")
    register("ssim", build_ssim, params=SsimParams,
             summary="structural similarity (gaussian window, sigma 1.5, data range 1), mean of per-image SSIM")
    register("ms_ssim", build_ms_ssim, params=MsSsimParams,
             summary="multi-scale structural similarity (5 scales, gaussian window, sigma 1.5), mean of per-image "
                     "values; needs image sides of at least 176 pixels")
    register("lab_histogram_intersection", build_lab_histogram, params=LabHistogramParams,
             summary="colourfulness (pix2pix): intersection of the L, a and b histograms of all outputs with "
                     "those of all real images, parts L, a, b and their mean (higher is better)")
    register("frechet_distance", build_frechet, params=FrechetParams,
             summary="Frechet distance between Gaussian fits of features (torchvision inception_v3 or vgg16, "
                     "weights from a local file) of outputs and of real images (lower is better)")
